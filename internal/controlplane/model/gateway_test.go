package model

import (
	"slices"
	"strings"
	"testing"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// parseMesh builds a mesh from YAML documents; any config error fails the test.
func parseMesh(t *testing.T, docs ...string) (*Mesh, []config.Diagnostic) {
	t.Helper()
	objs, diags := config.Parse("t.yaml", []byte(strings.Join(docs, "\n---\n")))
	for _, d := range diags {
		if d.Level == config.Error {
			t.Fatalf("%s", d)
		}
	}
	return Build(objs, nil)
}

const routerWE = `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: istio-ingressgateway, namespace: istio-system, annotations: {lucid.dev/proxy: router}}
spec: {address: 127.0.0.1, labels: {istio: ingressgateway, app: istio-ingressgateway}}`

func gatewayDoc(ns, name, selector, servers string) string {
	return "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: " + name + ", namespace: " + ns + "}\nspec:\n  selector: " +
		selector + "\n  servers:\n" + servers
}

func vsDoc(ns, name, hosts, gateways, exportTo string) string {
	s := "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: " + name + ", namespace: " + ns + "}\nspec:\n  hosts: " + hosts + "\n"
	if gateways != "" {
		s += "  gateways: " + gateways + "\n"
	}
	if exportTo != "" {
		s += "  exportTo: " + exportTo + "\n"
	}
	return s + "  http:\n  - route: [{destination: {host: reviews.default.svc.cluster.local}}]\n"
}

func router() *Proxy {
	return &Proxy{Type: ProxyRouter, Name: "istio-ingressgateway", Namespace: "istio-system", Labels: map[string]string{"istio": "ingressgateway", "app": "istio-ingressgateway"}}
}

func TestResolveGatewayName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"mesh", "mesh"},
		{"ingress", "web/ingress"},
		{"istio-system/ingress", "istio-system/ingress"},
		{"./ingress", "web/ingress"},
		{"ingress.istio-system", "istio-system/ingress"},
		{"ingress.istio-system.svc.cluster.local", "istio-system/ingress"},
	} {
		if got := ResolveGatewayName(tc.in, "web"); got != tc.want {
			t.Errorf("ResolveGatewayName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestGatewaysForSelector(t *testing.T) {
	m, _ := parseMesh(t, routerWE,
		gatewayDoc("istio-system", "a", "{istio: ingressgateway}", "  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [\"*\"]\n"),
		gatewayDoc("default", "b", "{}", "  - port: {number: 81, name: http, protocol: HTTP}\n    hosts: [\"*\"]\n"),
		gatewayDoc("default", "c", "{istio: eastwestgateway}", "  - port: {number: 82, name: http, protocol: HTTP}\n    hosts: [\"*\"]\n"),
	)
	var got []string
	for _, g := range m.GatewaysFor(router()) {
		got = append(got, g.Key())
	}
	if want := []string{"istio-system/a", "default/b"}; !slices.Equal(got, want) {
		t.Errorf("gateways for the router: %v, want %v (creation order; empty selector selects all)", got, want)
	}
	side := router()
	side.Type = ProxySidecar
	if gs := m.GatewaysFor(side); len(gs) != 0 {
		t.Errorf("a sidecar got gateways %v", gs)
	}
}

func TestMergeGateways(t *testing.T) {
	const simple = "{mode: SIMPLE, serverCertificate: /c, privateKey: /k}"
	m, diags := parseMesh(t, routerWE,
		gatewayDoc("istio-system", "a", "{istio: ingressgateway}",
			"  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [a.example.com]\n"+
				"  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: [a.example.com]\n    tls: "+simple+"\n"),
		gatewayDoc("istio-system", "b", "{app: istio-ingressgateway}",
			"  - port: {number: 80, name: http2, protocol: HTTP2}\n    hosts: [b.example.com]\n"+
				"  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: [b.example.com]\n    tls: "+simple+"\n"+
				"  - port: {number: 31400, name: tcp, protocol: TCP}\n    hosts: [\"*\"]\n"),
		gatewayDoc("istio-system", "c", "{istio: ingressgateway}",
			"  - port: {number: 80, name: tcp, protocol: TCP}\n    hosts: [\"*\"]\n"+
				"  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: [a.example.com]\n    tls: "+simple+"\n"+
				"  - port: {number: 31400, name: tcp-2, protocol: TCP}\n    hosts: [\"*\"]\n"),
		gatewayDoc("istio-system", "d", "{istio: ingressgateway}",
			"  - port: {number: 443, name: plain, protocol: HTTP}\n    hosts: [c.example.com]\n"),
	)
	mg := m.MergeGateways(router())
	var got []string
	for _, gp := range mg.Ports {
		for _, s := range gp.Servers {
			got = append(got, itoa(gp.Number)+" "+s.Gateway.Name+" "+s.Field()+" "+s.RouteName)
		}
	}
	want := []string{
		"80 a spec.servers[0] http.80",
		"80 b spec.servers[0] http.80",
		"443 a spec.servers[1] https.443.https.a.istio-system",
		"443 b spec.servers[1] https.443.https.b.istio-system",
		"31400 b spec.servers[2] ",
	}
	if !slices.Equal(got, want) {
		t.Errorf("merged:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var skipped []string
	for _, s := range mg.Skipped {
		skipped = append(skipped, s.Server.Gateway.Name+" "+s.Server.Field()+": "+s.Reason)
	}
	wantSkipped := []string{
		"c spec.servers[0]: port 80 already serves HTTP (Gateway istio-system/a spec.servers[0]); only plaintext HTTP servers share a plaintext port",
		`c spec.servers[1]: host "a.example.com" is already served on port 443 by Gateway istio-system/a spec.servers[1] (two TLS filter chains cannot match the same SNI)`,
		"c spec.servers[2]: port 31400 already serves TCP (Gateway istio-system/b spec.servers[2]); only plaintext HTTP servers share a plaintext port",
		"d spec.servers[0]: port 443 already serves TLS (Gateway istio-system/a spec.servers[1]); a server without tls settings cannot share it",
	}
	if !slices.Equal(skipped, wantSkipped) {
		t.Errorf("skipped:\n%s\nwant:\n%s", strings.Join(skipped, "\n"), strings.Join(wantSkipped, "\n"))
	}
	// Build reports them as warnings on the Gateway, for the router WorkloadEntry.
	n := 0
	for _, d := range diags {
		if d.Kind == config.KindGateway && (d.Name == "c" || d.Name == "d") && d.Level == config.Warning &&
			strings.HasPrefix(d.Message, "server not served by gateway istio-system/istio-ingressgateway: ") {
			n++
		}
	}
	if n != 4 {
		t.Errorf("%d gateway warnings from Build, want 4: %v", n, diags)
	}
}

func TestVirtualServiceBinding(t *testing.T) {
	m, _ := parseMesh(t,
		vsDoc("default", "a-public", "[a.example.com]", "[istio-system/ingress]", ""),
		vsDoc("istio-system", "b-private", "[b.example.com]", "[ingress]", "[\".\"]"),
		vsDoc("default", "c-named", "[c.example.com]", "[istio-system/ingress]", "[istio-system]"),
		vsDoc("default", "d-hidden", "[d.example.com]", "[istio-system/ingress]", "[\".\"]"),
		vsDoc("default", "e-mesh", "[e.example.com]", "", ""),
		vsDoc("default", "f-both", "[reviews]", "[istio-system/ingress, mesh]", ""),
		vsDoc("default", "g-gateway-only", "[reviews]", "[istio-system/ingress]", ""),
	)
	var got []string
	for _, v := range m.VirtualServicesForGateway("istio-system", "istio-system/ingress") {
		got = append(got, v.Config.Name)
	}
	// Private to the router's namespace first, then exported to it by name, then public.
	if want := []string{"b-private", "c-named", "a-public", "f-both", "g-gateway-only"}; !slices.Equal(got, want) {
		t.Errorf("bound to the gateway: %v, want %v", got, want)
	}
	// Sidecars see only VirtualServices listing mesh (or no gateways).
	if v := m.VirtualServiceFor("default", "reviews.default.svc.cluster.local"); v == nil || v.Config.Name != "f-both" {
		t.Errorf("sidecar VirtualService for reviews: %v, want f-both (g-gateway-only does not apply to sidecars)", v)
	}
	if v := m.VirtualServiceFor("default", "e.example.com"); v == nil || v.Config.Name != "e-mesh" {
		t.Errorf("sidecar VirtualService for e.example.com: %v", v)
	}
	if vs := m.VirtualServicesForGateway("istio-system", "istio-system/other"); len(vs) != 0 {
		t.Errorf("other gateway got %d VirtualServices", len(vs))
	}
}

func TestVirtualServiceHosts(t *testing.T) {
	for _, tc := range []struct {
		name        string
		serverHosts []string
		vsNamespace string
		vsHosts     []string
		want        []string
	}{
		{"exact", []string{"a.example.com"}, "default", []string{"a.example.com"}, []string{"a.example.com"}},
		{"server wildcard narrowed by VS", []string{"*.example.com"}, "default", []string{"a.example.com", "b.other.com"}, []string{"a.example.com"}},
		{"VS wildcard narrowed by server", []string{"a.example.com", "b.example.com"}, "default", []string{"*.example.com"}, []string{"a.example.com", "b.example.com"}},
		{"star server", []string{"*"}, "default", []string{"*"}, []string{"*"}},
		{"star VS", []string{"a.example.com"}, "default", []string{"*"}, []string{"a.example.com"}},
		{"namespace match", []string{"default/a.example.com"}, "default", []string{"a.example.com"}, []string{"a.example.com"}},
		{"namespace mismatch", []string{"team/a.example.com"}, "default", []string{"a.example.com"}, nil},
		{"any namespace", []string{"*/a.example.com"}, "default", []string{"a.example.com"}, []string{"a.example.com"}},
		{"dot is the gateway's namespace", []string{"./a.example.com"}, "istio-system", []string{"a.example.com"}, []string{"a.example.com"}},
		{"no overlap", []string{"a.example.com"}, "default", []string{"b.example.com"}, nil},
	} {
		gw := &Gateway{Name: "ingress", Namespace: "istio-system"}
		s := &GatewayServer{Gateway: gw}
		for _, h := range tc.serverHosts {
			s.Hosts = append(s.Hosts, parseGatewayHost(h, gw.Namespace))
		}
		v := &VirtualService{Hosts: tc.vsHosts, Config: &config.Object{Namespace: tc.vsNamespace}}
		if got := s.VirtualServiceHosts(v); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestGatewayMatchApplies(t *testing.T) {
	p := router()
	for _, tc := range []struct {
		name     string
		gateways []string
		labels   map[string]string
		want     bool
	}{
		{"no gateways", nil, nil, true},
		{"names this gateway", []string{"istio-system/ingress"}, nil, true},
		{"short name in the VirtualService's namespace", []string{"ingress"}, nil, false},
		{"mesh only", []string{"mesh"}, nil, false},
		{"other gateway", []string{"istio-system/other"}, nil, false},
		{"source labels of the gateway", nil, map[string]string{"istio": "ingressgateway"}, true},
		{"source labels of someone else", nil, map[string]string{"app": "reviews"}, false},
	} {
		mr := &networkingv1alpha3.HTTPMatchRequest{Gateways: tc.gateways, SourceLabels: tc.labels}
		if got := GatewayMatchApplies(mr, p, "istio-system/ingress", "default"); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
	if !L4MatchApplies(nil, 0, "istio-system/ingress", "default", 443) || L4MatchApplies(nil, 444, "istio-system/ingress", "default", 443) ||
		!L4MatchApplies([]string{"ingress"}, 443, "default/ingress", "default", 443) || L4MatchApplies([]string{"mesh"}, 0, "default/ingress", "default", 443) {
		t.Error("L4MatchApplies")
	}
}

func TestResolveProxyKeepsMetadataLabels(t *testing.T) {
	m, _ := parseMesh(t, routerWE)
	// No WorkloadEntry by name or address: the labels from node metadata stay.
	p := &Proxy{Type: ProxyRouter, Name: "gw-7d9", Namespace: "istio-system", Labels: map[string]string{"istio": "ingressgateway"}}
	if got := m.ResolveProxy(p); got.Labels["istio"] != "ingressgateway" {
		t.Errorf("labels %v", got.Labels)
	}
	// A WorkloadEntry wins.
	p = &Proxy{Type: ProxyRouter, Name: "istio-ingressgateway", Namespace: "istio-system", Labels: map[string]string{"x": "y"}}
	if got := m.ResolveProxy(p); got.Labels["app"] != "istio-ingressgateway" || got.Labels["x"] != "" {
		t.Errorf("labels %v", got.Labels)
	}
}

// credentialName is served (from a Secret on Kubernetes); AUTO_PASSTHROUGH is not.
func TestUnsupportedTLSWarns(t *testing.T) {
	_, diags := parseMesh(t, gatewayDoc("istio-system", "k8s", "{istio: ingressgateway}",
		"  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: [a.example.com]\n    tls: {mode: SIMPLE, credentialName: a-cert}\n"+
			"  - port: {number: 15443, name: tls, protocol: TLS}\n    hosts: [\"*.local\"]\n    tls: {mode: AUTO_PASSTHROUGH}\n"))
	var got []string
	for _, d := range diags {
		got = append(got, d.String())
	}
	want := []string{
		"t.yaml:2: Gateway istio-system/k8s: spec.servers[1].tls: tls.mode AUTO_PASSTHROUGH (SNI-DNAT to mesh services) is not supported yet; Lucid gives this server no filter chain",
	}
	if !slices.Equal(got, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func FuzzGatewayNames(f *testing.F) {
	for _, s := range []string{"mesh", "ingress", "ns/ingress", "./x", "a.b.svc.cluster.local", "*/*.example.com", "/", "."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got := ResolveGatewayName(s, "default"); got != GatewayMesh && !strings.Contains(got, "/") {
			t.Errorf("ResolveGatewayName(%q) = %q: not namespace/name", s, got)
		}
		h := parseGatewayHost(s, "gw")
		if strings.Contains(s, "/") && h.Namespace == "*" {
			t.Errorf("parseGatewayHost(%q) kept namespace *", s)
		}
	})
}
