package proxy

import (
	"net/http/httptest"
	"testing"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/route"
)

// Every route configuration a request can be routed by gets its index when the snapshot
// is applied, and the index selects what the scan selects.
func TestRouteTablesBuiltPerConfiguration(t *testing.T) {
	vh := func(name string, domains ...string) resource.VirtualHost {
		return resource.VirtualHost{Name: name, Domains: domains, Routes: []resource.Route{{
			Name: name, Match: resource.RouteMatch{PathKind: resource.PathPrefix, Path: "/", CaseSensitive: true},
			Action: &resource.RouteAction{Cluster: name}}}}
	}
	rds := &resource.RouteConfig{Name: "9080", VirtualHosts: []resource.VirtualHost{
		vh("reviews", "reviews", "reviews:9080"), vh("ratings", "ratings", "*.ratings"), vh("any", "*")}}
	secure := vh("secure", "secure.example")
	secure.RequireTLS = resource.RequireTLSAll
	inline := &resource.RouteConfig{Name: "inline", VirtualHosts: []resource.VirtualHost{secure, vh("other", "*")}}
	s := &resource.Snapshot{
		Routes: map[string]*resource.RouteConfig{"9080": rds},
		Listeners: map[string]*resource.Listener{
			"0.0.0.0_9080": {Name: "0.0.0.0_9080", FilterChains: []resource.FilterChain{{HTTP: &resource.HTTPManager{RDSName: "9080"}}}},
			"gw":           {Name: "gw", FilterChains: []resource.FilterChain{{HTTP: &resource.HTTPManager{Routes: inline}}}},
			"virtualOutbound": {Name: "virtualOutbound", UseOriginalDst: true,
				DefaultChain: &resource.FilterChain{TCP: &resource.TCPProxy{Cluster: "PassthroughCluster"}}},
		},
	}
	tb := buildTable(s)
	plain := tb.plaintext[inline]
	if plain == nil {
		t.Fatal("no plaintext copy of the require_tls route config")
	}
	for _, rc := range []*resource.RouteConfig{rds, inline, plain, tb.passthrough["virtualOutbound"]} {
		idx := tb.routeTable(rc)
		if idx == nil || idx.Config() != rc || tb.routes[rc] != idx {
			t.Fatalf("route config %q: no index built with the configuration", rc.Name)
		}
	}
	// A route configuration from outside the snapshot (a connection's chain from an older
	// configuration) is indexed when asked for; none has none.
	stranger := &resource.RouteConfig{Name: "stranger"}
	if idx := tb.routeTable(stranger); idx == nil || idx.Config() != stranger || tb.routes[stranger] != nil {
		t.Fatal("no index, or a kept one, for a route config outside the snapshot")
	}
	if tb.routeTable(nil) != nil {
		t.Fatal("an index for no route config")
	}
	for _, host := range []string{"reviews", "REVIEWS:9080", "x.ratings", "ratings", "nope", ""} {
		r := httptest.NewRequest("GET", "http://h/", nil)
		r.Host = host
		_, want := route.Select(rds, r)
		_, got := tb.routeTable(rds).Select(r)
		if got == nil || got != want {
			t.Errorf("host %q: table selects route %v, the scan %v", host, got, want)
		}
	}
}
