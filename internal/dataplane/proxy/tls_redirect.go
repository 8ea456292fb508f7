package proxy

import (
	"net/http"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// require_tls (Istio's Gateway tls.httpsRedirect): a request that did not arrive over TLS
// and selects a virtual host with require_tls gets Envoy's 301 to https://<host><path>
// instead of being routed. The redirect is an ordinary route action here: for each route
// configuration with such a virtual host, a copy whose virtual host has one catch-all
// redirect route is built once per configuration, and plaintext requests use the copy.

// requireTLSRoutes builds the plaintext copies of every route configuration of s (RDS and
// inline) that has a require_tls virtual host.
func requireTLSRoutes(s *resource.Snapshot) map[*resource.RouteConfig]*resource.RouteConfig {
	out := map[*resource.RouteConfig]*resource.RouteConfig{}
	add := func(rc *resource.RouteConfig) {
		if rc == nil || out[rc] != nil {
			return
		}
		if c := PlaintextRoutes(rc); c != nil {
			out[rc] = c
		}
	}
	for _, rc := range s.Routes {
		add(rc)
	}
	for _, l := range s.Listeners {
		for _, fc := range l.FilterChains {
			if fc.HTTP != nil {
				add(fc.HTTP.Routes)
			}
		}
	}
	return out
}

// PlaintextRoutes returns rc with every require_tls virtual host's routes replaced by the
// redirect, or nil when no virtual host requires TLS (or rc is nil). The proxy builds it
// once per configuration; `lucid why` builds it for a plaintext request the same way.
func PlaintextRoutes(rc *resource.RouteConfig) *resource.RouteConfig {
	if rc == nil {
		return nil
	}
	var vhs []resource.VirtualHost
	for i, vh := range rc.VirtualHosts {
		if vh.RequireTLS == resource.RequireTLSNone {
			continue
		}
		if vhs == nil {
			vhs = append([]resource.VirtualHost(nil), rc.VirtualHosts...)
		}
		vh.Routes = []resource.Route{{
			Match:    resource.RouteMatch{PathKind: resource.PathPrefix, Path: "/", CaseSensitive: true},
			Redirect: &resource.Redirect{Scheme: "https", Code: http.StatusMovedPermanently},
		}}
		vh.RetryPolicy = nil
		vhs[i] = vh
	}
	if vhs == nil {
		return nil
	}
	c := *rc
	c.VirtualHosts = vhs
	return &c
}

// withoutTLS returns the route table a request uses: the plaintext copy of rc when the
// request did not arrive over TLS and rc has a require_tls virtual host.
func (t *table) withoutTLS(rc *resource.RouteConfig, r *http.Request) *resource.RouteConfig {
	if r.TLS != nil || rc == nil {
		return rc
	}
	if c, ok := t.plaintext[rc]; ok {
		return c
	}
	return rc
}
