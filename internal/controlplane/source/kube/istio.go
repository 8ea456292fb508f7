package kube

import (
	"encoding/json"
	"fmt"
	"sort"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/controlplane/source/file"
)

// istioKind is one Istio CRD kind and the versions Lucid reads, in order of preference.
type istioKind struct {
	kind     string
	group    string
	resource string
	versions []string
}

var istioKinds = []istioKind{
	{config.KindVirtualService, "networking.istio.io", "virtualservices", []string{"v1", "v1beta1", "v1alpha3"}},
	{config.KindDestinationRule, "networking.istio.io", "destinationrules", []string{"v1", "v1beta1", "v1alpha3"}},
	{config.KindServiceEntry, "networking.istio.io", "serviceentries", []string{"v1", "v1beta1", "v1alpha3"}},
	{config.KindWorkloadEntry, "networking.istio.io", "workloadentries", []string{"v1", "v1beta1", "v1alpha3"}},
	{config.KindGateway, "networking.istio.io", "gateways", []string{"v1", "v1beta1", "v1alpha3"}},
	{config.KindSidecar, "networking.istio.io", "sidecars", []string{"v1", "v1beta1", "v1alpha3"}},
	{config.KindPeerAuthentication, "security.istio.io", "peerauthentications", []string{"v1", "v1beta1"}},
	{config.KindAuthorizationPolicy, "security.istio.io", "authorizationpolicies", []string{"v1", "v1beta1"}},
	{config.KindTelemetry, "telemetry.istio.io", "telemetries", []string{"v1", "v1alpha1"}},
}

// parsed is the parse of one Istio object at one resourceVersion.
type parsed struct {
	resourceVersion string
	uid             string
	generation      int64
	apiVersion      string
	obj             *config.Object // nil when rejected
	diags           []config.Diagnostic
}

// parser turns Istio objects from the API server into config.Objects with the file
// source's parser and validation, so messages are the same; objects from Kubernetes have
// no file, so their messages start at "Kind ns/name: field: ...". It caches each object's
// parse by resourceVersion and keeps the last good version of an object whose new
// version is rejected, as the file source does. Not safe for concurrent use (the source's
// build loop owns it).
type parser struct {
	cache map[string]*parsed        // "Kind ns/name" → latest parse
	good  map[string]*config.Object // "Kind ns/name" → last accepted version
}

func newParser() *parser {
	return &parser{cache: map[string]*parsed{}, good: map[string]*config.Object{}}
}

// parse returns the parse of u, cached by resourceVersion.
func (p *parser) parse(kind string, u *unstructured.Unstructured) *parsed {
	key := fmt.Sprintf("%s %s/%s", kind, u.GetNamespace(), u.GetName())
	if c := p.cache[key]; c != nil && c.resourceVersion == u.GetResourceVersion() && c.uid == string(u.GetUID()) {
		return c
	}
	pr := &parsed{resourceVersion: u.GetResourceVersion(), uid: string(u.GetUID()), generation: u.GetGeneration(), apiVersion: u.GetAPIVersion()}
	objs, diags := config.Parse("", document(u))
	for i := range diags {
		diags[i].Line = 0 // lines of the generated document mean nothing to the user
	}
	for _, o := range objs {
		o.Line = 0
		if o.Kind == kind {
			pr.obj = o
		}
	}
	pr.diags = diags
	p.cache[key] = pr
	return pr
}

// document is the object as the parser reads it: apiVersion, kind, metadata (name,
// namespace, labels, annotations) and spec, in JSON (a YAML subset).
func document(u *unstructured.Unstructured) []byte {
	meta := map[string]any{"name": u.GetName(), "namespace": u.GetNamespace()}
	if l := u.GetLabels(); len(l) > 0 {
		meta["labels"] = l
	}
	if a := u.GetAnnotations(); len(a) > 0 {
		meta["annotations"] = a
	}
	doc := map[string]any{"apiVersion": u.GetAPIVersion(), "kind": u.GetKind(), "metadata": meta}
	if spec, ok := u.Object["spec"]; ok {
		doc["spec"] = spec
	}
	b, err := json.Marshal(doc)
	if err != nil {
		// Unstructured content decoded from JSON always encodes again; say what broke if not.
		b = []byte(fmt.Sprintf("kind: %q\nmetadata: {name: %q, namespace: %q}\nspec: {%q: %q}",
			u.GetKind(), u.GetName(), u.GetNamespace(), "unencodable", err.Error()))
	}
	return b
}

// istioObjects parses every Istio object (current: "Kind ns/name" → object) and applies
// last-good retention: a rejected object whose previous version was accepted keeps
// serving that version, with a Warning. It also returns the parses, for reporting.
func (p *parser) istioObjects(current map[string]istioItem) ([]*config.Object, []config.Diagnostic, map[string]*parsed) {
	keys := make([]string, 0, len(current))
	for k := range current {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var objs []*config.Object
	var diags []config.Diagnostic
	results := make(map[string]*parsed, len(current))
	good := make(map[string]*config.Object, len(p.good))
	for _, k := range keys {
		it := current[k]
		pr := p.parse(it.kind, it.obj)
		results[k] = pr
		diags = append(diags, pr.diags...)
		switch {
		case pr.obj != nil:
			objs = append(objs, pr.obj)
			good[k] = pr.obj
		case p.good[k] != nil:
			prev := p.good[k]
			objs = append(objs, prev)
			good[k] = prev
			diags = append(diags, config.Diagnostic{Level: config.Warning, Kind: prev.Kind,
				Namespace: prev.Namespace, Name: prev.Name, Message: file.KeepingLastGood})
		}
	}
	for k := range p.cache {
		if _, ok := current[k]; !ok {
			delete(p.cache, k)
		}
	}
	p.good = good
	return objs, diags, results
}

// istioItem is one Istio object from an informer.
type istioItem struct {
	kind string
	obj  *unstructured.Unstructured
}
