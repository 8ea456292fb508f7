package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"sort"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/proto"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	securityv1beta1 "istio.io/api/security/v1beta1"
	telemetryv1alpha1 "istio.io/api/telemetry/v1alpha1"
)

// kindInfo says which apiVersions a kind accepts and how to make its spec.
type kindInfo struct {
	group    string
	versions []string
	newSpec  func() proto.Message
	applied  bool // false: parsed and validated, but Lucid does not act on it yet
	validate func(o *Object, v *validator)
}

var networkingVersions = []string{"v1", "v1beta1", "v1alpha3"}

var kinds = map[string]kindInfo{
	KindServiceEntry:        {"networking.istio.io", networkingVersions, func() proto.Message { return &networkingv1alpha3.ServiceEntry{} }, true, validateServiceEntry},
	KindWorkloadEntry:       {"networking.istio.io", networkingVersions, func() proto.Message { return &networkingv1alpha3.WorkloadEntry{} }, true, validateWorkloadEntry},
	KindVirtualService:      {"networking.istio.io", networkingVersions, func() proto.Message { return &networkingv1alpha3.VirtualService{} }, true, validateVirtualService},
	KindDestinationRule:     {"networking.istio.io", networkingVersions, func() proto.Message { return &networkingv1alpha3.DestinationRule{} }, true, validateDestinationRule},
	KindGateway:             {"networking.istio.io", networkingVersions, func() proto.Message { return &networkingv1alpha3.Gateway{} }, true, validateGateway},
	KindSidecar:             {"networking.istio.io", networkingVersions, func() proto.Message { return &networkingv1alpha3.Sidecar{} }, true, validateSidecarApplied}, // sidecar.go
	KindPeerAuthentication:  {"security.istio.io", []string{"v1", "v1beta1"}, func() proto.Message { return &securityv1beta1.PeerAuthentication{} }, true, validatePeerAuthentication},
	KindAuthorizationPolicy: {"security.istio.io", []string{"v1", "v1beta1"}, func() proto.Message { return &securityv1beta1.AuthorizationPolicy{} }, true, validateAuthorizationPolicy},
	KindRequestAuthentication: {"security.istio.io", []string{"v1", "v1beta1"}, func() proto.Message { return &securityv1beta1.RequestAuthentication{} }, true,
		validateRequestAuthentication},
	KindTelemetry: {"telemetry.istio.io", []string{"v1", "v1alpha1"}, func() proto.Message { return &telemetryv1alpha1.Telemetry{} }, true, validateTelemetry}, // validate_telemetry.go
}

// istioKindsNotRead are Istio's kinds Lucid does not read (yet).
var istioKindsNotRead = map[string]bool{
	"EnvoyFilter": true, "WorkloadGroup": true, "ProxyConfig": true, "WasmPlugin": true, "TrafficExtension": true,
}

// knownKinds lists the kinds in a stable order for messages.
func knownKinds() string {
	var ks []string
	for k := range kinds {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

// NotAppliedMessage is the Info message for kinds that are validated but not applied.
const NotAppliedMessage = "parsed and validated; not yet applied by Lucid"

// Options says what ParseWith returns beyond the control plane's objects.
type Options struct {
	// Kubernetes: documents of the Kubernetes kinds analysis reads (KindService, KindPod,
	// KindNamespace, KindSecret, KindNode) become Objects with Kube set; documents of
	// other kinds outside Istio's API groups are skipped silently, as istioctl analyze
	// skips them.
	Kubernetes bool
	// KeepInvalid: an object whose spec decoded but failed validation is returned too,
	// with Invalid set (its Error diagnostics are returned as always).
	KeepInvalid bool
}

// Analysis is what `lucid analyze` reads: Kubernetes objects, and invalid objects, which
// Istio's analyzers read as well.
var Analysis = Options{Kubernetes: true, KeepInvalid: true}

// Parse parses one file's multi-document YAML for the control plane. file is the name
// used in diagnostics.
//
// Each document is parsed on its own: a malformed document is reported (file:line:column)
// and the other documents still load. Within a file, a second object with the same
// Kind/namespace/name is rejected.
func Parse(file string, data []byte) ([]*Object, []Diagnostic) {
	return ParseWith(file, data, Options{})
}

// ParseWith is Parse with options.
func ParseWith(file string, data []byte, opts Options) ([]*Object, []Diagnostic) {
	var objs []*Object
	var diags []Diagnostic
	for _, doc := range splitDocuments(data) {
		o, d := parseDocument(file, doc, opts)
		objs = append(objs, o...)
		diags = append(diags, d...)
	}
	return dedupe(objs, diags)
}

// document is one `---`-separated chunk of a file and the line it starts on.
type document struct {
	data []byte
	line int // 1-based line of the chunk's first line
}

var docSeparator = regexp.MustCompile(`^---(\s|$)`)

// splitDocuments splits YAML on lines starting with `---`. Splitting by hand (rather
// than with a streaming decoder) keeps one malformed document from hiding the rest.
func splitDocuments(data []byte) []document {
	var docs []document
	lines := bytes.SplitAfter(data, []byte("\n"))
	start, startLine := 0, 1
	off := 0
	for i, l := range lines {
		if docSeparator.Match(l) {
			docs = append(docs, document{data: data[start:off], line: startLine})
			// Content after "--- " on the same line belongs to the next document;
			// keep it by starting the next chunk after the marker only.
			start = off + 3
			startLine = i + 1
		}
		off += len(l)
	}
	docs = append(docs, document{data: data[start:], line: startLine})
	return docs
}

func parseDocument(file string, doc document, opts Options) ([]*Object, []Diagnostic) {
	var root yaml.Node
	if err := yaml.Unmarshal(doc.data, &root); err != nil {
		return nil, []Diagnostic{syntaxError(file, doc, err)}
	}
	if len(root.Content) == 0 {
		return nil, nil // empty document or comments only
	}
	n := resolve(root.Content[0])
	if isNull(n) {
		return nil, nil
	}
	p := &docParser{file: file, offset: doc.line - 1, opts: opts}
	p.object(n)
	return p.objs, p.diags
}

// docParser turns one document's node tree into Objects.
type docParser struct {
	file   string
	offset int // added to node lines (the document's position in the file)
	opts   Options
	objs   []*Object
	diags  []Diagnostic
}

func (p *docParser) line(n *yaml.Node) int {
	if n == nil || n.Line == 0 {
		return 0
	}
	return n.Line + p.offset
}

func (p *docParser) errorf(n *yaml.Node, kind, ns, name, field, format string, args ...any) {
	p.diags = append(p.diags, Diagnostic{
		Level: Error, File: p.file, Line: p.line(n), Kind: kind, Namespace: ns, Name: name,
		Field: field, Message: fmt.Sprintf(format, args...),
	})
}

func mapGet(n *yaml.Node, key string) (*yaml.Node, *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i], resolve(n.Content[i+1])
		}
	}
	return nil, nil
}

func (p *docParser) object(n *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "", "", "", "", "expected a Kubernetes-style object (a mapping with apiVersion, kind, metadata, spec), got %s", describe(n))
		return
	}
	kindKey, kindNode := mapGet(n, "kind")
	_, avNode := mapGet(n, "apiVersion")
	kind, apiVersion := scalarValue(kindNode), scalarValue(avNode)
	if kind == "List" {
		_, items := mapGet(n, "items")
		if items == nil || items.Kind != yaml.SequenceNode {
			p.errorf(n, "", "", "", "items", "kind List needs a list of items")
			return
		}
		for _, it := range items.Content {
			p.object(resolve(it))
		}
		return
	}

	// Name and namespace first, so that every later message names the object.
	meta, name, ns := objectMeta(n)
	docLine := n.Line
	if kindKey != nil {
		docLine = kindKey.Line
	}
	at := &yaml.Node{Line: docLine}

	if kindNode == nil || kind == "" {
		p.errorf(at, "", ns, name, "kind", "missing kind")
		return
	}
	if _, ok := kubeKinds[kind]; ok && p.opts.Kubernetes && apiVersion == "v1" {
		p.kubeObject(n, kind, apiVersion, at)
		return
	}
	info, ok := kinds[kind]
	if !ok {
		if p.opts.Kubernetes && !istioGroup(apiVersion) {
			return // a Kubernetes object analysis does not read
		}
		if p.opts.Kubernetes && istioKindsNotRead[kind] {
			p.diags = append(p.diags, Diagnostic{Level: Info, File: p.file, Line: p.line(kindNode), Namespace: ns, Name: name,
				Field: "kind", UnknownKind: true, Message: fmt.Sprintf("%s %s/%s is an Istio kind Lucid does not read: not analysed", kind, ns, name)})
			return
		}
		p.errorf(kindNode, "", ns, name, "kind", "unknown kind %q (Lucid knows %s)", kind, knownKinds())
		p.diags[len(p.diags)-1].UnknownKind = true
		return
	}
	if !versionOK(info, apiVersion) && p.opts.Kubernetes && apiVersion != "" && !istioGroup(apiVersion) {
		return // a kind of another API group with an Istio kind's name (Kubernetes Gateway API's Gateway)
	}
	if !versionOK(info, apiVersion) {
		var want []string
		for _, v := range info.versions {
			want = append(want, info.group+"/"+v)
		}
		line := avNode
		if line == nil {
			line = at
		}
		p.errorf(line, kind, ns, name, "apiVersion", "unknown apiVersion %q for %s (want %s)", apiVersion, kind, strings.Join(want, ", "))
		return
	}

	obj := &Object{Kind: kind, APIVersion: apiVersion, Name: name, Namespace: ns, File: p.file, Line: p.line(at)}
	obj.CacheKey()
	bad := false
	fail := func(n *yaml.Node, field, format string, args ...any) {
		p.errorf(n, kind, ns, name, field, format, args...)
		bad = true
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch k := n.Content[i].Value; k {
		case "apiVersion", "kind", "metadata", "spec", "status":
		default:
			fail(n.Content[i], k, "unknown field %q", k)
		}
	}
	p.metadata(meta, obj, at, fail)

	spec := info.newSpec()
	specKey, specNode := mapGet(n, "spec")
	dec := newDecoder()
	if specNode != nil {
		dec.lines["spec"] = specKey.Line
		dec.message(specNode, spec.ProtoReflect(), "spec")
	}
	for _, e := range dec.errs {
		fail(&yaml.Node{Line: e.line}, e.path, "%s", e.msg)
	}
	if bad {
		return
	}
	obj.Spec = spec
	if p.file != "" {
		obj.Lines = map[string]int{}
		if metaKey, meta := mapGet(n, "metadata"); meta != nil {
			obj.Lines["metadata"] = p.line(metaKey)
			p.nodeLines(meta, "metadata", obj.Lines)
		}
		for path, line := range dec.lines {
			obj.Lines[path] = p.line(&yaml.Node{Line: line})
		}
	}

	v := &validator{ns: ns, name: name}
	info.validate(obj, v)
	for _, e := range v.errs {
		level := Error
		if e.warning {
			level = Warning
		}
		line := dec.lineOf(e.path)
		if line == 0 {
			line = docLine
		}
		p.diags = append(p.diags, Diagnostic{Level: level, File: p.file, Line: p.line(&yaml.Node{Line: line}),
			Kind: kind, Namespace: ns, Name: name, Field: e.path, Message: e.msg, Lucid: e.lucid})
		if !e.warning {
			bad = true
		}
	}
	obj.Generation = generation(obj)
	if bad {
		if p.opts.KeepInvalid {
			obj.Invalid = true
			p.objs = append(p.objs, obj)
		}
		return
	}
	if !info.applied {
		p.diags = append(p.diags, Diagnostic{Level: Info, File: p.file, Line: obj.Line, Kind: kind,
			Namespace: ns, Name: name, Message: NotAppliedMessage})
	}
	p.objs = append(p.objs, obj)
}

// objectMeta returns a document's metadata node, name and namespace ("default" when unset).
func objectMeta(n *yaml.Node) (meta *yaml.Node, name, ns string) {
	_, meta = mapGet(n, "metadata")
	ns = "default"
	if meta != nil {
		_, nameNode := mapGet(meta, "name")
		name = scalarValue(nameNode)
		if _, nsNode := mapGet(meta, "namespace"); scalarValue(nsNode) != "" {
			ns = scalarValue(nsNode)
		}
	}
	return meta, name, ns
}

func versionOK(info kindInfo, apiVersion string) bool {
	for _, v := range info.versions {
		if apiVersion == info.group+"/"+v {
			return true
		}
	}
	return false
}

func scalarValue(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode || isNull(n) {
		return ""
	}
	return n.Value
}

// metadata reads name, namespace, labels and annotations, checking them as the
// Kubernetes API server would.
func (p *docParser) metadata(meta *yaml.Node, obj *Object, at *yaml.Node, fail func(*yaml.Node, string, string, ...any)) {
	if meta == nil {
		fail(at, "metadata.name", "missing metadata.name")
		return
	}
	if meta.Kind != yaml.MappingNode {
		fail(meta, "metadata", "expected a mapping, got %s", describe(meta))
		return
	}
	nameKey, nameNode := mapGet(meta, "name")
	switch {
	case nameNode == nil || isNull(nameNode) || nameNode.Value == "":
		if nameKey != nil {
			at = nameKey
		}
		fail(at, "metadata.name", "missing metadata.name")
	case nameNode.Kind != yaml.ScalarNode || nameNode.ShortTag() != "!!str":
		fail(nameNode, "metadata.name", "expected a string, got %s", describe(nameNode))
	case !isDNS1123Subdomain(nameNode.Value):
		fail(nameNode, "metadata.name", "invalid name %q: must be a lowercase RFC 1123 subdomain (a-z, 0-9, '-' and '.', starting and ending with a letter or digit, at most 253 characters)", nameNode.Value)
	}
	if _, nsNode := mapGet(meta, "namespace"); nsNode != nil && !isNull(nsNode) {
		if nsNode.Kind != yaml.ScalarNode || !isDNS1123Label(nsNode.Value) {
			fail(nsNode, "metadata.namespace", "invalid namespace %q: must be a lowercase RFC 1123 label", nsNode.Value)
		}
	}
	obj.Labels = p.stringMap(meta, "labels", fail)
	obj.Annotations = p.stringMap(meta, "annotations", fail)
	for k, v := range obj.Labels {
		if err := validateLabel(k, v); err != "" {
			fail(meta, "metadata.labels", "%s", err)
		}
	}
}

func (p *docParser) stringMap(meta *yaml.Node, key string, fail func(*yaml.Node, string, string, ...any)) map[string]string {
	_, n := mapGet(meta, key)
	if n == nil || isNull(n) {
		return nil
	}
	field := "metadata." + key
	if n.Kind != yaml.MappingNode {
		fail(n, field, "expected a mapping, got %s", describe(n))
		return nil
	}
	out := make(map[string]string, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" {
			fail(v, field+"["+k.Value+"]", "expected a string, got %s (quote it)", describe(v))
			continue
		}
		out[k.Value] = v.Value
	}
	return out
}

// generation hashes the object's identity, metadata and spec (deterministic proto
// encoding) so that equal generations mean equal content.
func generation(o *Object) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00", o.Kind, o.APIVersion, o.Namespace, o.Name)
	for _, m := range []map[string]string{o.Labels, o.Annotations} {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(h, "%s=%s\x00", k, m[k])
		}
		h.Write([]byte{1})
	}
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(o.Spec)
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// dedupe rejects every object whose Kind/namespace/name was already seen, keeping
// the first. The error names both places.
func dedupe(objs []*Object, diags []Diagnostic) ([]*Object, []Diagnostic) {
	seen := map[string]*Object{}
	out := objs[:0]
	for _, o := range objs {
		if first, ok := seen[o.Key()]; ok {
			diags = append(diags, Diagnostic{Level: Error, File: o.File, Line: o.Line, Kind: o.Kind,
				Namespace: o.Namespace, Name: o.Name, Lucid: true,
				Message: fmt.Sprintf("duplicate object: already defined at %s:%d", first.File, first.Line)})
			continue
		}
		seen[o.Key()] = o
		out = append(out, o)
	}
	return out, diags
}
