package model

import (
	"net/netip"
	"strings"
	"testing"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

func TestResolveHost(t *testing.T) {
	for _, tc := range []struct{ host, ns, want string }{
		{"reviews", "default", "reviews.default.svc.cluster.local"},
		{"reviews", "team", "reviews.team.svc.cluster.local"},
		{"reviews.default", "team", "reviews.default"}, // Istio takes anything with a dot as written
		{"reviews.default.svc.cluster.local", "team", "reviews.default.svc.cluster.local"},
		{"*", "default", "*"},
		{"*.example.com", "default", "*.example.com"},
		{"::1", "default", "::1"},
	} {
		if got := ResolveHost(tc.host, tc.ns); got != tc.want {
			t.Errorf("ResolveHost(%q, %q) = %q, want %q", tc.host, tc.ns, got, tc.want)
		}
	}
}

func TestHostMatches(t *testing.T) {
	for _, tc := range []struct {
		pattern, host string
		want          bool
	}{
		{"*", "a.b", true},
		{"*.default.svc.cluster.local", "reviews.default.svc.cluster.local", true},
		{"*.default.svc.cluster.local", "reviews.other.svc.cluster.local", false},
		{"reviews.default.svc.cluster.local", "reviews.default.svc.cluster.local", true},
		{"reviews.default.svc.cluster.local", "ratings.default.svc.cluster.local", false},
	} {
		if got := HostMatches(tc.pattern, tc.host); got != tc.want {
			t.Errorf("HostMatches(%q, %q) = %v", tc.pattern, tc.host, got)
		}
	}
}

func TestParseNodeID(t *testing.T) {
	p, err := ParseNodeID("sidecar~127.0.10.2~reviews-v1.default~default.svc.cluster.local")
	if err != nil {
		t.Fatal(err)
	}
	if p.Type != "sidecar" || p.IP != netip.MustParseAddr("127.0.10.2") || p.Name != "reviews-v1" || p.Namespace != "default" {
		t.Errorf("got %+v", p)
	}
	for _, bad := range []string{
		"", "sidecar~127.0.0.1~a.default", "gateway~127.0.0.1~a.default~default.svc.cluster.local",
		"sidecar~notanip~a.default~default.svc.cluster.local", "sidecar~127.0.0.1~noname~",
	} {
		if _, err := ParseNodeID(bad); err == nil {
			t.Errorf("ParseNodeID(%q): want error", bad)
		}
	}
}

func FuzzParseNodeID(f *testing.F) {
	f.Add("sidecar~127.0.10.2~reviews-v1.default~default.svc.cluster.local")
	f.Add("router~::1~gw.istio-system~istio-system.svc.cluster.local")
	f.Fuzz(func(t *testing.T, id string) {
		p, err := ParseNodeID(id)
		if err != nil {
			return
		}
		if p.Name == "" || p.Namespace == "" || !p.IP.IsValid() || p.ID != id {
			t.Fatalf("ParseNodeID(%q) = %+v", id, p)
		}
	})
}

func obj(kind, ns, name string, spec any) *config.Object {
	o := &config.Object{Kind: kind, Namespace: ns, Name: name, File: name + ".yaml"}
	switch s := spec.(type) {
	case *networkingv1alpha3.ServiceEntry:
		o.Spec = s
	case *networkingv1alpha3.DestinationRule:
		o.Spec = s
	case *networkingv1alpha3.WorkloadEntry:
		o.Spec = s
	case *networkingv1alpha3.VirtualService:
		o.Spec = s
	}
	return o
}

func se(host string, exportTo ...string) *networkingv1alpha3.ServiceEntry {
	return &networkingv1alpha3.ServiceEntry{
		Hosts: []string{host}, ExportTo: exportTo, Resolution: networkingv1alpha3.ServiceEntry_STATIC,
		Ports:            []*networkingv1alpha3.ServicePort{{Name: "http", Number: 9080, Protocol: "HTTP"}},
		WorkloadSelector: &networkingv1alpha3.WorkloadSelector{Labels: map[string]string{"app": "reviews"}},
	}
}

func dr(host string, exportTo ...string) *networkingv1alpha3.DestinationRule {
	return &networkingv1alpha3.DestinationRule{Host: host, ExportTo: exportTo}
}

func TestDestinationRuleLookupOrder(t *testing.T) {
	const host = "reviews.svcns.svc.cluster.local"
	objs := []*config.Object{
		obj(config.KindServiceEntry, "svcns", "reviews", se(host)),
		obj(config.KindDestinationRule, "client", "client-dr", dr(host)),
		obj(config.KindDestinationRule, "svcns", "svc-dr", dr("reviews")),
		obj(config.KindDestinationRule, "svcns", "svc-private", dr("*.svcns.svc.cluster.local", ".")),
		obj(config.KindDestinationRule, "istio-system", "root-dr", dr("*")),
	}
	m, _ := Build(objs, nil)
	for _, tc := range []struct{ ns, want string }{
		{"client", "client-dr"}, // proxy namespace first
		{"other", "svc-dr"},     // then the service's namespace
		{"svcns", "svc-dr"},     // exact host beats the wildcard in the same namespace
		{"istio-system", "root-dr"},
	} {
		got := m.DestinationRule(tc.ns, nil, host)
		if got == nil || got.Config.Name != tc.want {
			t.Errorf("from %s: got %v, want %s", tc.ns, got, tc.want)
		}
	}
	// Only the root namespace's rule is left for another host of the service namespace.
	if got := m.DestinationRule("other", nil, "x.svcns.svc.cluster.local"); got == nil || got.Config.Name != "root-dr" {
		t.Errorf("private rule leaked: %v", got)
	}
}

func TestVisibilityAndVirtualServiceChoice(t *testing.T) {
	vs := func(hosts []string, exportTo ...string) *networkingv1alpha3.VirtualService {
		return &networkingv1alpha3.VirtualService{Hosts: hosts, ExportTo: exportTo}
	}
	objs := []*config.Object{
		obj(config.KindServiceEntry, "a", "private", se("private.a.svc.cluster.local", ".")),
		obj(config.KindServiceEntry, "a", "public", se("public.a.svc.cluster.local")),
		obj(config.KindVirtualService, "a", "b-wild", vs([]string{"*.a.svc.cluster.local"})),
		obj(config.KindVirtualService, "a", "c-exact", vs([]string{"public"})),
		obj(config.KindVirtualService, "a", "a-exact-dup", vs([]string{"public"})),
		obj(config.KindVirtualService, "a", "z-gw", &networkingv1alpha3.VirtualService{Hosts: []string{"public"}, Gateways: []string{"ingress"}}),
	}
	m, _ := Build(objs, nil)
	if got := len(m.VisibleServices("b")); got != 1 {
		t.Errorf("namespace b sees %d services, want 1 (private is exportTo .)", got)
	}
	if got := len(m.VisibleServices("a")); got != 2 {
		t.Errorf("namespace a sees %d services, want 2", got)
	}
	if v := m.VirtualServiceFor("b", "public.a.svc.cluster.local"); v == nil || v.Config.Name != "a-exact-dup" {
		t.Errorf("exact host, first by creation order: got %v", v)
	}
	if v := m.VirtualServiceFor("b", "other.a.svc.cluster.local"); v == nil || v.Config.Name != "b-wild" {
		t.Errorf("wildcard: got %v", v)
	}
}

func TestWarnings(t *testing.T) {
	we := func(addr, version string) *networkingv1alpha3.WorkloadEntry {
		l := map[string]string{"app": "reviews"}
		if version != "" {
			l["version"] = version
		}
		return &networkingv1alpha3.WorkloadEntry{Address: addr, Labels: l}
	}
	rule := dr("reviews")
	rule.Subsets = []*networkingv1alpha3.Subset{{Name: "v1", Labels: map[string]string{"version": "v1"}}, {Name: "v3", Labels: map[string]string{"version": "v3"}}}
	objs := []*config.Object{
		obj(config.KindServiceEntry, "default", "reviews", se("reviews.default.svc.cluster.local")),
		obj(config.KindWorkloadEntry, "default", "reviews-v1", we("127.0.10.2", "v1")),
		obj(config.KindWorkloadEntry, "default", "reviews-v3", we("127.0.10.4", "")),
		obj(config.KindDestinationRule, "default", "reviews", rule),
		obj(config.KindDestinationRule, "default", "ghost", dr("ghost.example.com")),
		obj(config.KindVirtualService, "default", "reviews", &networkingv1alpha3.VirtualService{
			Hosts: []string{"reviews"},
			Http: []*networkingv1alpha3.HTTPRoute{{Route: []*networkingv1alpha3.HTTPRouteDestination{
				{Destination: &networkingv1alpha3.Destination{Host: "reviews", Subset: "v1"}, Weight: 50},
				{Destination: &networkingv1alpha3.Destination{Host: "reviews", Subset: "v9"}, Weight: 50},
				{Destination: &networkingv1alpha3.Destination{Host: "nowhere"}},
			}}},
		}),
	}
	_, diags := Build(objs, nil)
	var got []string
	for _, d := range diags {
		if d.Level != config.Warning {
			t.Errorf("level %v for %s", d.Level, d)
		}
		got = append(got, d.String())
	}
	want := []string{
		`ghost.yaml: DestinationRule default/ghost: spec.host: host ghost.example.com matches no service in the mesh (IST0174)`,
		`reviews.yaml: DestinationRule default/reviews: spec.subsets[1].labels: subset "v3" selects 0 of 2 endpoints of reviews.default.svc.cluster.local (wants version=v3; endpoint labels: app=reviews; app=reviews,version=v1); requests to it get 503 UH no healthy upstream (IST0173)`,
		`reviews.yaml: VirtualService default/reviews: spec.http[0].route[1].destination.subset: subset "v9" of reviews.default.svc.cluster.local is not defined (DestinationRule default/reviews does not define it); requests get 503 NC (cluster_not_found, IST0101)`,
		`reviews.yaml: VirtualService default/reviews: spec.http[0].route[2].destination.host: host nowhere.default.svc.cluster.local is not in the service registry; requests get 503 NC (cluster_not_found) or follow outboundTrafficPolicy`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestResolveProxyAndInbound(t *testing.T) {
	w := &networkingv1alpha3.WorkloadEntry{Address: "127.0.10.3", Labels: map[string]string{"app": "reviews"}, ServiceAccount: "sa", Ports: map[string]uint32{"http": 9081}}
	o := obj(config.KindWorkloadEntry, "default", "reviews-v2", w)
	m, _ := Build([]*config.Object{o, obj(config.KindServiceEntry, "default", "reviews", se("reviews.default.svc.cluster.local"))}, nil)
	p := m.ResolveProxy(&Proxy{Name: "unknown", Namespace: "default", IP: netip.MustParseAddr("127.0.10.3")})
	if p.Labels["app"] != "reviews" || p.ServiceAccount != "sa" {
		t.Errorf("by address: %+v", p)
	}
	in := m.InboundPorts(m.Workload(p))
	if len(in) != 1 || in[0].Port != 9081 {
		t.Errorf("inbound ports %+v, want [9081]", in)
	}
	if eps := m.Endpoints("reviews.default.svc.cluster.local", 9080); len(eps) != 1 || eps[0].Port != 9081 {
		t.Errorf("endpoints %+v", eps)
	}
}

func TestMatchApplies(t *testing.T) {
	p := &Proxy{Namespace: "default", Labels: map[string]string{"app": "productpage", "version": "v1"}}
	for _, tc := range []struct {
		name string
		m    *networkingv1alpha3.HTTPMatchRequest
		want bool
	}{
		{"nil", nil, true},
		{"labels subset", &networkingv1alpha3.HTTPMatchRequest{SourceLabels: map[string]string{"app": "productpage"}}, true},
		{"labels differ", &networkingv1alpha3.HTTPMatchRequest{SourceLabels: map[string]string{"app": "reviews"}}, false},
		{"namespace", &networkingv1alpha3.HTTPMatchRequest{SourceNamespace: "default"}, true},
		{"other namespace", &networkingv1alpha3.HTTPMatchRequest{SourceNamespace: "other"}, false},
		{"gateway only", &networkingv1alpha3.HTTPMatchRequest{Gateways: []string{"istio-system/ingress"}}, false},
		// Istio: gateways containing mesh decide alone; sourceLabels are not consulted.
		{"mesh gateway wins", &networkingv1alpha3.HTTPMatchRequest{Gateways: []string{"mesh"}, SourceLabels: map[string]string{"app": "reviews"}}, true},
	} {
		if got := MatchApplies(tc.m, p); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}
