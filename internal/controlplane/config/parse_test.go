package config

import (
	"os"
	"path/filepath"
	"testing"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	corev1 "k8s.io/api/core/v1"
)

const multiDoc = `# leading comment
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata:
  name: reviews
  namespace: shop
  labels: {app: reviews}
  annotations: {note: hi}
spec:
  hosts: [reviews]
  resolution: STATIC
  workloadSelector:
    labels: {app: reviews}
  ports:
  - {number: 9080, name: http, protocol: HTTP}
---
---
# comments only
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v1
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http: [ {route: [ {destination: {host: reviews}} ] }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1}
spec: {address: 127.0.0.11, labels: {app: reviews}}
`

func TestParseMultiDocument(t *testing.T) {
	objs, diags := Parse("shop.yaml", []byte(multiDoc))
	checkDiags(t, diags, []string{
		`error shop.yaml:29: DestinationRule default/reviews: spec.subsets[1].name: duplicate subset "v1"`,
		"error shop.yaml:37:1: YAML syntax error: did not find expected ',' or ']' (while parsing a flow sequence at line 36, column 9)",
	})
	if len(objs) != 2 {
		t.Fatalf("got %d objects, want 2", len(objs))
	}
	se := objs[0]
	if se.Kind != KindServiceEntry || se.APIVersion != "networking.istio.io/v1beta1" || se.Namespace != "shop" ||
		se.Name != "reviews" || se.File != "shop.yaml" || se.Line != 3 || se.Labels["app"] != "reviews" ||
		se.Annotations["note"] != "hi" || len(se.Generation) != 16 {
		t.Errorf("unexpected ServiceEntry object: %+v", se)
	}
	spec, ok := se.Spec.(*networkingv1alpha3.ServiceEntry)
	if !ok || spec.Ports[0].Number != 9080 || spec.Resolution != networkingv1alpha3.ServiceEntry_STATIC {
		t.Errorf("unexpected spec %v", se.Spec)
	}
	we := objs[1]
	if we.Key() != "WorkloadEntry default/reviews-v1" || we.Line != 39 {
		t.Errorf("got %s at line %d", we.Key(), we.Line)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []string
	}{
		{"malformed", "kind: [\n", []string{"error f.yaml:2:1: YAML syntax error: did not find expected node content"}},
		{"syntax error column", "apiVersion: v1\nkind: a: b\n", []string{"error f.yaml:2:8: YAML syntax error: mapping values are not allowed in this context"}},
		{"syntax error in a later document", "kind: a\n---\nkind: b\nspec:\n  hosts: [a, b\n  http: x\n", []string{
			"error f.yaml:1: kind: unknown kind \"a\" (Lucid knows AuthorizationPolicy, DestinationRule, Gateway, PeerAuthentication, RequestAuthentication, ServiceEntry, Sidecar, Telemetry, VirtualService, WorkloadEntry)",
			"error f.yaml:6:7: YAML syntax error: did not find expected ',' or ']' (while parsing a flow sequence at line 5, column 10)"}},
		{"not a mapping", "- a\n- b\n", []string{"error f.yaml:1: expected a Kubernetes-style object (a mapping with apiVersion, kind, metadata, spec), got a list"}},
		{"missing kind", "apiVersion: networking.istio.io/v1\nmetadata: {name: a}\n",
			[]string{"error f.yaml:1: kind: missing kind"}},
		{"unknown kind", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
			[]string{`error f.yaml:2: kind: unknown kind "ConfigMap" (Lucid knows AuthorizationPolicy, DestinationRule, Gateway, PeerAuthentication, RequestAuthentication, ServiceEntry, Sidecar, Telemetry, VirtualService, WorkloadEntry)`}},
		{"unknown apiVersion", "apiVersion: networking.istio.io/v2\nkind: VirtualService\nmetadata: {name: a}\n",
			[]string{`error f.yaml:1: VirtualService default/a: apiVersion: unknown apiVersion "networking.istio.io/v2" for VirtualService (want networking.istio.io/v1, networking.istio.io/v1beta1, networking.istio.io/v1alpha3)`}},
		{"security group for networking kind", "apiVersion: security.istio.io/v1\nkind: DestinationRule\nmetadata: {name: a}\nspec: {host: a}\n",
			[]string{`error f.yaml:1: DestinationRule default/a: apiVersion: unknown apiVersion "security.istio.io/v1" for DestinationRule (want networking.istio.io/v1, networking.istio.io/v1beta1, networking.istio.io/v1alpha3)`}},
		{"missing name", "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {namespace: a}\nspec: {host: a}\n",
			[]string{"error f.yaml:2: DestinationRule a/: metadata.name: missing metadata.name"}},
		{"no metadata", "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nspec: {host: a}\n",
			[]string{"error f.yaml:2: DestinationRule default/: metadata.name: missing metadata.name"}},
		{"bad name", "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: Reviews_1\nspec: {host: a}\n",
			[]string{`error f.yaml:4: DestinationRule default/Reviews_1: metadata.name: invalid name "Reviews_1": must be a lowercase RFC 1123 subdomain (a-z, 0-9, '-' and '.', starting and ending with a letter or digit, at most 253 characters)`}},
		{"unknown top-level field", "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: a}\nspek: {host: a}\n",
			[]string{`error f.yaml:4: DestinationRule default/a: spek: unknown field "spek"`}},
		{"label not a string", "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: a\n  labels: {version: 1}\nspec: {host: a}\n",
			[]string{"error f.yaml:5: DestinationRule default/a: metadata.labels[version]: expected a string, got number 1 (quote it)"}},
		{"duplicate in one file", "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: a}\nspec: {host: a}\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: a}\nspec: {host: b}\n",
			[]string{"error f.yaml:7: DestinationRule default/a: duplicate object: already defined at f.yaml:2"}},
		{"list", "apiVersion: v1\nkind: List\nitems:\n- apiVersion: networking.istio.io/v1\n  kind: DestinationRule\n  metadata: {name: a}\n  spec: {host: a}\n- apiVersion: networking.istio.io/v1\n  kind: DestinationRule\n  metadata: {name: b}\n  spec: {hots: a}\n",
			[]string{`error f.yaml:11: DestinationRule default/b: spec.hots: unknown field "hots"`}},
		{"snake case accepted", "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: a}\nspec:\n  host: a\n  traffic_policy: {load_balancer: {simple: RANDOM}}\n", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := Parse("f.yaml", []byte(tc.yaml))
			if tc.want == nil {
				tc.want = []string{}
			}
			checkDiags(t, diags, tc.want)
		})
	}
}

func TestGenerationTracksContent(t *testing.T) {
	a := "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: a}\nspec: {host: a}\n"
	b := "# moved\n\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: a}\nspec:\n  host: a\n"
	c := "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: a}\nspec: {host: b}\n"
	gen := func(s string) string {
		t.Helper()
		objs, diags := Parse("f.yaml", []byte(s))
		if len(objs) != 1 || len(diags) != 0 {
			t.Fatalf("parse: %v", diagStrings(diags))
		}
		return objs[0].Generation
	}
	if gen(a) != gen(b) {
		t.Error("same content, different formatting: generations differ")
	}
	if gen(a) == gen(c) {
		t.Error("different spec: same generation")
	}
}

func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dr := func(name string) string {
		return "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: " + name + "}\nspec: {host: " + name + "}\n"
	}
	write("b.yaml", dr("b"))
	write("a.yml", dr("a"))
	write("sub/c.yaml", dr("c")+"---\n"+dr("a"))
	write(".hidden.yaml", "not: [valid")
	write(".git/x.yaml", "not: [valid")
	write("meshconfig.yaml", "outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n")
	write("notes.txt", "ignored")

	objs, diags := LoadDir(dir)
	checkDiags(t, diags, []string{"error sub/c.yaml:7: DestinationRule default/a: duplicate object: already defined at a.yml:2"})
	var got []string
	for _, o := range objs {
		got = append(got, o.File+" "+o.Key())
	}
	want := []string{"a.yml DestinationRule default/a", "b.yaml DestinationRule default/b", "sub/c.yaml DestinationRule default/c"}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("object %d: got %q, want %q", i, got[i], want[i])
		}
	}
}

func TestLoadDirMissing(t *testing.T) {
	objs, diags := LoadDir(filepath.Join(t.TempDir(), "nope"))
	if len(objs) != 0 || len(diags) != 1 || diags[0].Level != Error {
		t.Fatalf("got %d objects, diagnostics %q", len(objs), diagStrings(diags))
	}
}

func TestMeshConfig(t *testing.T) {
	def, err := LoadMeshConfig("")
	if err != nil {
		t.Fatal(err)
	}
	if def.OutboundTrafficPolicy.Mode != meshv1alpha1.MeshConfig_OutboundTrafficPolicy_ALLOW_ANY ||
		def.ConnectTimeout.AsDuration().String() != "10s" || def.TrustDomain != "cluster.local" ||
		def.DefaultConfig.StatusPort != 15020 || def.DefaultConfig.ProxyAdminPort != 15000 {
		t.Errorf("unexpected defaults: %v", def)
	}

	p := filepath.Join(t.TempDir(), "meshconfig.yaml")
	if err := os.WriteFile(p, []byte("outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\nconnectTimeout: 250ms\ndefaultConfig:\n  proxyAdminPort: 15001\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mc, err := LoadMeshConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if mc.OutboundTrafficPolicy.Mode != meshv1alpha1.MeshConfig_OutboundTrafficPolicy_REGISTRY_ONLY ||
		mc.ConnectTimeout.AsDuration().String() != "250ms" || mc.TrustDomain != "cluster.local" ||
		mc.DefaultConfig.ProxyAdminPort != 15001 || mc.DefaultConfig.StatusPort != 15020 {
		t.Errorf("unexpected mesh config: %v", mc)
	}

	if err := os.WriteFile(p, []byte("outboundTrafficPolicy: {mod: REGISTRY_ONLY}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadMeshConfig(p); err == nil {
		t.Error("unknown field accepted")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(multiDoc))
	f.Add([]byte("apiVersion: v1\nkind: List\nitems: [{kind: VirtualService}]\n"))
	f.Add([]byte("a: &x {b: *x}\n"))
	f.Add([]byte("--- \n---\n...\n"))
	f.Add([]byte("apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: b}\nspec:\n  ports: [{port: 80, targetPort: http}]\n"))
	f.Add([]byte("apiVersion: v1\nkind: Pod\nmetadata: {name: a, labels: {app: x}}\nspec: {containers: [{name: c}]}\n---\nkind: Namespace\napiVersion: v1\nmetadata: {name: n}\n"))
	f.Add([]byte("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {tls.crt: eA==}\n"))
	f.Add([]byte("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: a}\nspec: {subsets: [{name: a}, {name: a}]}\n"))
	f.Add([]byte("a: [1, 2\nb: {c: d\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, diags := Parse("fuzz.yaml", data)
		for _, o := range objs {
			if o.Spec == nil || o.Kube != nil || o.Invalid || o.Name == "" || o.Generation == "" {
				t.Fatalf("incomplete object %+v", o)
			}
		}
		for _, d := range diags {
			_ = d.String()
		}
		objs, diags = ParseWith("fuzz.yaml", data, Analysis)
		for _, o := range objs {
			if (o.Spec == nil) == (o.Kube == nil) || o.Name == "" || o.Generation == "" || o.Kube != nil && o.Invalid {
				t.Fatalf("incomplete object %+v", o)
			}
			_ = o.LineOf("spec.hosts[0]")
		}
		for _, d := range diags {
			if d.Syntax && (d.Line == 0 || d.Kind != "") {
				t.Fatalf("syntax error without a line, or about an object: %+v", d)
			}
			_ = d.String()
		}
	})
}

// TestParseForAnalysis: analysis reads Kubernetes objects (typed, cluster-scoped ones
// without namespace), keeps objects that fail validation, records each field's line, skips
// other Kubernetes kinds and reports Istio kinds Lucid does not read as Info.
func TestParseForAnalysis(t *testing.T) {
	const doc = `apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop}
spec:
  selector: {app: reviews}
  ports:
  - name: http
    port: 9080
---
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio-injection: enabled}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: waypoint}
spec: {gatewayClassName: istio-waypoint}
---
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: ef}
spec: {}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews
  subsets:
  - {name: v1}
  - {name: v1}
`
	objs, diags := ParseWith("f.yaml", []byte(doc), Analysis)
	checkDiags(t, diags, []string{
		"info f.yaml:24: kind: EnvoyFilter default/ef is an Istio kind Lucid does not read: not analysed",
		`error f.yaml:35: DestinationRule shop/reviews: spec.subsets[1].name: duplicate subset "v1"`,
	})
	if len(objs) != 3 {
		t.Fatalf("got %d objects, want Service, Namespace and the invalid DestinationRule", len(objs))
	}
	svc, ns, dr := objs[0], objs[1], objs[2]
	if s, ok := svc.Kube.(*corev1.Service); !ok || svc.Spec != nil || s.Spec.Ports[0].Port != 9080 || svc.Namespace != "shop" {
		t.Errorf("Service: %+v", svc)
	}
	if svc.LineOf("spec.ports[0].port") != 8 || svc.LineOf("metadata.name") != 3 {
		t.Errorf("Service field lines: port %d, name %d", svc.LineOf("spec.ports[0].port"), svc.LineOf("metadata.name"))
	}
	if _, ok := ns.Kube.(*corev1.Namespace); !ok || ns.Namespace != "" || ns.Labels["istio-injection"] != "enabled" {
		t.Errorf("Namespace: %+v", ns)
	}
	if !dr.Invalid || dr.Spec == nil || dr.LineOf("spec.subsets[1].name") != 35 {
		t.Errorf("DestinationRule: invalid %v, line %d", dr.Invalid, dr.LineOf("spec.subsets[1].name"))
	}
	// The control plane reads none of them.
	if objs, _ := Parse("f.yaml", []byte(doc)); len(objs) != 0 {
		t.Errorf("Parse returned %d objects", len(objs))
	}
}

func TestCachedKeyFollowsTheFields(t *testing.T) {
	o := &Object{Kind: "VirtualService", Namespace: "default", Name: "reviews"}
	o.CacheKey()
	if got := o.Key(); got != "VirtualService default/reviews" {
		t.Fatalf("cached key %q", got)
	}
	for _, c := range []struct {
		change func(*Object)
		want   string
	}{
		{func(o *Object) { o.Namespace = "prod" }, "VirtualService prod/reviews"},
		{func(o *Object) { o.Name = "ratings" }, "VirtualService default/ratings"},
		{func(o *Object) { o.Kind = "Gateway" }, "Gateway default/reviews"},
		{func(o *Object) { o.Namespace, o.Name = "default/re", "views" }, "VirtualService default/re/views"},
		{func(o *Object) { o.Kind, o.Namespace = "VirtualService default", "" }, "VirtualService default /reviews"},
	} {
		x := *o
		c.change(&x)
		if got := x.Key(); got != c.want {
			t.Errorf("after a change: Key %q, want %q", got, c.want)
		}
	}
}
