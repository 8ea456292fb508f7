package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
)

// The Kubernetes kinds analysis reads besides Istio's (ParseWith with Options.Kubernetes):
// the cluster objects istioctl analyze's analyzers read. Services and Pods are the service
// registry and the workloads, Namespaces carry injection and ambient labels, Secrets are
// gateway credentials, Nodes give pods their topology labels.
const (
	KindService   = "Service"
	KindPod       = "Pod"
	KindNamespace = "Namespace"
	KindSecret    = "Secret"
	KindNode      = "Node"
)

// kubeKinds makes the typed object of each Kubernetes kind (group "", version v1).
var kubeKinds = map[string]struct {
	newObject     func() any
	clusterScoped bool
}{
	KindService:   {func() any { return &corev1.Service{} }, false},
	KindPod:       {func() any { return &corev1.Pod{} }, false},
	KindNamespace: {func() any { return &corev1.Namespace{} }, true},
	KindSecret:    {func() any { return &corev1.Secret{} }, false},
	KindNode:      {func() any { return &corev1.Node{} }, true},
}

// istioGroup reports whether apiVersion is in one of Istio's API groups.
func istioGroup(apiVersion string) bool {
	group, _, _ := strings.Cut(apiVersion, "/")
	return strings.HasSuffix(group, ".istio.io")
}

// kubeObject decodes a Kubernetes object as the API server's clients do: known fields into
// the typed object, unknown ones ignored (analysis reads these objects; it does not
// validate them). The object's metadata comes from the typed object too.
func (p *docParser) kubeObject(n *yaml.Node, kind, apiVersion string, at *yaml.Node) {
	info := kubeKinds[kind]
	var raw any
	obj := info.newObject()
	err := n.Decode(&raw)
	var js []byte
	if err == nil {
		js, err = json.Marshal(jsonable(raw))
	}
	if err == nil {
		err = json.Unmarshal(js, obj)
	}
	_, name, ns := objectMeta(n)
	if info.clusterScoped {
		ns = ""
	}
	if err != nil {
		p.errorf(at, kind, ns, name, "", "cannot decode %s: %s", kind, strings.TrimPrefix(err.Error(), "json: "))
		return
	}
	if name == "" {
		p.errorf(at, kind, ns, name, "metadata.name", "missing metadata.name")
		return
	}
	o := &Object{Kind: kind, APIVersion: apiVersion, Name: name, Namespace: ns, File: p.file, Line: p.line(at), Kube: obj}
	o.CacheKey()
	if m, ok := obj.(interface {
		GetLabels() map[string]string
		GetAnnotations() map[string]string
	}); ok {
		o.Labels, o.Annotations = m.GetLabels(), m.GetAnnotations()
	}
	if p.file != "" {
		o.Lines = map[string]int{}
		p.nodeLines(n, "", o.Lines)
	}
	o.Generation = kubeGeneration(o, js)
	p.objs = append(p.objs, o)
}

// jsonable turns what yaml.v3 decodes into `any` into what encoding/json marshals: maps
// with non-string keys (a YAML `1: x`) get string keys.
func jsonable(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = jsonable(e)
		}
		return v
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[fmt.Sprint(k)] = jsonable(e)
		}
		return out
	case []any:
		for i, e := range v {
			v[i] = jsonable(e)
		}
		return v
	}
	return v
}

// nodeLines records the line of every mapping key and list item under n: "metadata.name",
// "spec.ports[0].port". Keys that contain a dot or a bracket are written in brackets
// (metadata.labels[app.kubernetes.io/name]), as the validator names map entries.
func (p *docParser) nodeLines(n *yaml.Node, path string, lines map[string]int) {
	n = resolve(n)
	if n == nil {
		return
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := resolve(n.Content[i])
			var kp string
			switch {
			case path == "":
				kp = k.Value
			case strings.ContainsAny(k.Value, ".[]"):
				kp = path + "[" + k.Value + "]"
			default:
				kp = path + "." + k.Value
			}
			lines[kp] = p.line(k)
			p.nodeLines(n.Content[i+1], kp, lines)
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			ip := fmt.Sprintf("%s[%d]", path, i)
			lines[ip] = p.line(item)
			p.nodeLines(item, ip, lines)
		}
	}
}

// kubeGeneration hashes a Kubernetes object's identity and content.
func kubeGeneration(o *Object, js []byte) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00", o.Kind, o.APIVersion, o.Namespace, o.Name)
	h.Write(js)
	return hex.EncodeToString(h.Sum(nil))[:16]
}
