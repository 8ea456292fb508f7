package proxy

import (
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/route"
)

// Route tables indexed once per configuration: every route configuration a request can be
// routed by (RDS, inline in a chain, the explicit proxy's passthrough tables, the
// plaintext copies of require_tls) gets a route.Table when the snapshot is applied, so
// that virtual host selection is a map lookup instead of a scan of every domain of every
// virtual host per request.

// compileRoutes indexes the route configurations of t.
func compileRoutes(t *table) map[*resource.RouteConfig]*route.Table {
	out := map[*resource.RouteConfig]*route.Table{}
	add := func(rc *resource.RouteConfig) {
		if rc != nil && out[rc] == nil {
			out[rc] = route.Compile(rc)
		}
	}
	for _, rc := range t.snap.Routes {
		add(rc)
	}
	for _, l := range t.snap.Listeners {
		for i := range l.FilterChains {
			if h := l.FilterChains[i].HTTP; h != nil {
				add(h.Routes)
			}
		}
		if l.DefaultChain != nil && l.DefaultChain.HTTP != nil {
			add(l.DefaultChain.HTTP.Routes)
		}
	}
	for _, rc := range t.passthrough {
		add(rc)
	}
	for _, rc := range t.plaintext {
		add(rc)
	}
	return out
}

// routeTable is the index of rc. A route configuration that was not part of the
// configuration (the chain of a connection accepted under an older one, a passthrough
// table built for a socket that outlived its listener) is indexed now.
func (t *table) routeTable(rc *resource.RouteConfig) *route.Table {
	if rc == nil {
		return nil
	}
	if tb := t.routes[rc]; tb != nil {
		return tb
	}
	return route.Compile(rc)
}
