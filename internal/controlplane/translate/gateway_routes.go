package translate

import (
	"cmp"
	"slices"

	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// gatewayRouteConfig is the RouteConfiguration routeName of a router, built as Istio
// builds a gateway's:
//   - for each server sharing the route name, each VirtualService bound to its gateway
//     (model.VirtualServicesForGateway order) yields one virtual host per host the server
//     serves it under (GatewayServer.VirtualServiceHosts), named "<host>:<port>";
//   - the routes are the VirtualService's http rules translated as for sidecars
//     (vsroute.go), keeping matches whose gateways are empty or name this gateway; a
//     VirtualService with no route left adds nothing;
//   - several VirtualServices for one host merge into one virtual host: their routes
//     concatenated in that order, then the catch-all routes moved to the end;
//   - tls.httpsRedirect makes the server's virtual hosts require TLS (301 to https),
//     adding one for each server host that has none;
//   - no virtual host at all gives "blackhole:<port>" without routes (404 NR);
//   - ignore_port_in_host_matching is set, so a Host with a port ("blog.example.com:8080")
//     matches a virtual host's domain (the host alone, wildcards included) as without it.
func (g *generator) gatewayRouteConfig(routeName string, servers []*model.GatewayServer) *routepb.RouteConfiguration {
	vhosts := map[string]*routepb.VirtualHost{}
	type key struct{ gw, vs string }
	built := map[key][]*routepb.Route{}
	for _, s := range servers {
		gw, port := s.Gateway.Key(), s.Port()
		redirect := s.Spec.GetTls().GetHttpsRedirect()
		for _, vs := range g.m.VirtualServicesForGateway(g.p.Namespace, gw) {
			hosts := s.VirtualServiceHosts(vs)
			if len(hosts) == 0 {
				continue
			}
			k := key{gw, vs.Config.Namespace + "/" + vs.Config.Name}
			routes, ok := built[k]
			if !ok {
				ns := vs.Config.Namespace
				routes = g.vsRoutesWhere(vs, port, func(m *networkingv1alpha3.HTTPMatchRequest) bool {
					return model.GatewayMatchApplies(m, g.p, gw, ns)
				})
				built[k] = routes
			}
			if len(routes) == 0 {
				continue
			}
			for _, h := range hosts {
				vh := vhosts[h]
				if vh == nil {
					vh = gatewayVirtualHost(h, port)
					vhosts[h] = vh
				}
				vh.Routes = append(vh.Routes, routes...)
				if redirect {
					vh.RequireTls = routepb.VirtualHost_ALL
				}
			}
		}
		if !redirect {
			continue
		}
		for _, h := range s.SNIHosts() {
			vh := vhosts[h]
			if vh == nil {
				vh = gatewayVirtualHost(h, port)
				vhosts[h] = vh
			}
			vh.RequireTls = routepb.VirtualHost_ALL
		}
	}
	rc := &routepb.RouteConfiguration{
		Name:                           routeName,
		ValidateClusters:               wrapperspb.Bool(false),
		IgnorePortInHostMatching:       true,
		MaxDirectResponseBodySizeBytes: wrapperspb.UInt32(maxDirectResponseBody),
	}
	for _, vh := range vhosts {
		vh.Routes = catchAllLast(vh.Routes)
		rc.VirtualHosts = append(rc.VirtualHosts, vh)
	}
	slices.SortFunc(rc.VirtualHosts, func(a, b *routepb.VirtualHost) int { return cmp.Compare(a.GetName(), b.GetName()) })
	if len(rc.VirtualHosts) == 0 {
		rc.VirtualHosts = []*routepb.VirtualHost{{Name: "blackhole:" + itoa(servers[0].Port()), Domains: []string{"*"}}}
	}
	return rc
}

// gatewayVirtualHost is an empty virtual host for host on a gateway port: its one domain is
// the host (the route configuration ignores the request's port).
func gatewayVirtualHost(host string, port uint32) *routepb.VirtualHost {
	return &routepb.VirtualHost{Name: host + ":" + itoa(port), Domains: []string{host}, IncludeRequestAttemptCount: true}
}

// catchAllLast moves the catch-all routes to the end, keeping the order of the others
// (Istio's SortVHostRoutes, for virtual hosts merged from several VirtualServices).
func catchAllLast(routes []*routepb.Route) []*routepb.Route {
	out := make([]*routepb.Route, 0, len(routes))
	var last []*routepb.Route
	for _, r := range routes {
		if catchAll(r.GetMatch()) {
			last = append(last, r)
		} else {
			out = append(out, r)
		}
	}
	return append(out, last...)
}
