package translate

import (
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"

	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	faultpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// Proxyless gRPC, as Istio's grpcgen serves it: a gRPC application whose xDS node metadata
// says GENERATOR "grpc" (grpc-go, grpc-java, grpc-cpp with an Istio-style bootstrap) gets
// no sidecar listeners. For every HTTP (gRPC) service port it can see it gets
//
//   - a listener named "<host>:<port>" (the dial target xds:///<host>:<port>; also each
//     short form a sidecar in its namespace resolves, "echo:9090", "echo.default:9090", and
//     the service's addresses) holding only an api_listener: an HTTP connection manager
//     with the fault filter and the router, taking its routes over RDS from
//   - the route configuration "outbound|<port>||<host>": the one virtual host of that
//     service, built as a sidecar's (VirtualService weights, subsets, header matches,
//     retries, timeouts, fault injection), never the catch-all;
//   - the clusters and endpoints a sidecar of its class gets (DestinationRule subsets,
//     load balancing, outlier detection), which gRPC accepts as they are, with mutual TLS
//     in the form gRPC reads (grpc_tls.go);
//   - when it serves (xds.NewGRPCServer), its server-side listeners (grpc_server.go).
//
// gRPC subscribes to the names it needs; the ADS server answers only those.

// grpcMemo keeps the gRPC form of classes' Groups, by the Group it is derived from, so the
// clients of a class share it as sidecars share theirs. An endpoint change keeps route and
// cluster Groups (the memo stays valid); a configuration change resets it.
type grpcMemo struct {
	mu       sync.Mutex
	routes   map[*Group][2]*Group // a class's routes → gRPC listeners and routes
	clusters map[[2]*Group]*Group // a class's clusters and endpoints → in gRPC's TLS form
}

func (g *grpcMemo) reset() {
	g.mu.Lock()
	g.routes, g.clusters = nil, nil
	g.mu.Unlock()
}

// grpcParts is p's resources when p is a proxyless gRPC client: cl's clusters (in gRPC's
// TLS form) and endpoints, listeners and route configurations derived from cl's outbound
// routes, and p's own server-side listeners.
func (c *Cache) grpcParts(mesh *model.Mesh, p *model.Proxy, cl *classEntry) *Parts {
	m := &c.grpc
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.routes == nil {
		m.routes, m.clusters = map[*Group][2]*Group{}, map[[2]*Group]*Group{}
	}
	lr, ok := m.routes[cl.routes]
	if !ok {
		lr = grpcListenersAndRoutes(cl.routes)
		m.routes[cl.routes] = lr
	}
	key := [2]*Group{cl.clusters, cl.endpoints}
	clusters, ok := m.clusters[key]
	if !ok {
		clusters = grpcClusters(cl.clusters, cl.endpoints)
		m.clusters[key] = clusters
	}
	parts := &Parts{
		Listeners: []*Group{lr[0]},
		Routes:    []*Group{lr[1]},
		Clusters:  []*Group{clusters},
		Endpoints: []*Group{cl.endpoints},
	}
	if server := grpcServerListeners(mesh, p); len(server) > 0 {
		parts.Listeners = append(parts.Listeners, newGroup(server)) // grpc_server.go
	}
	return parts
}

// grpcListenersAndRoutes derives the listeners and route configurations of gRPC clients
// from a class's outbound route configurations.
func grpcListenersAndRoutes(classRoutes *Group) [2]*Group {
	var listeners, routes []proto.Message
	for _, m := range classRoutes.Messages() {
		rc, ok := m.(*routepb.RouteConfiguration)
		if !ok {
			continue
		}
		port, err := strconv.ParseUint(rc.GetName(), 10, 32)
		if err != nil {
			continue // only the outbound route configurations, named by port
		}
		for _, vh := range rc.GetVirtualHosts() {
			host, ok := strings.CutSuffix(vh.GetName(), ":"+rc.GetName())
			if !ok || host == "" {
				continue // allow_any, block_all
			}
			name := ClusterName("outbound", uint32(port), "", host)
			targets := grpcTargets(vh.GetDomains(), rc.GetName())
			routes = append(routes, &routepb.RouteConfiguration{Name: name, VirtualHosts: []*routepb.VirtualHost{grpcVirtualHost(vh, targets)}})
			for _, target := range targets {
				listeners = append(listeners, grpcListener(target, name))
			}
		}
	}
	return [2]*Group{newGroup(listeners), newGroup(routes)}
}

// grpcVirtualHost is a sidecar's virtual host with the domains gRPC matches: gRPC
// ignores ignore_port_in_host_matching and matches its target "host:port", so each
// domain comes with the port as well (as Istio's proxyless domains do). vh is shared and
// left untouched.
func grpcVirtualHost(vh *routepb.VirtualHost, targets []string) *routepb.VirtualHost {
	out := &routepb.VirtualHost{}
	proto.Merge(out, vh)
	out.Domains = append(slices.Clone(vh.GetDomains()), targets...)
	return out
}

// grpcClusters is g in the form gRPC accepts: no transport_socket_matches, mutual TLS
// from certificate providers (grpcClusterTLS). g itself when no cluster changes.
func grpcClusters(g, endpoints *Group) *Group {
	var out []proto.Message
	mutual := allEndpointsMutual(endpoints)
	for i, m := range g.Messages() {
		c, ok := m.(*clusterpb.Cluster)
		var gc *clusterpb.Cluster
		if ok {
			gc = grpcClusterTLS(c, mutual)
		}
		if !ok || gc == c {
			if out != nil {
				out = append(out, m)
			}
			continue
		}
		if out == nil {
			out = append(make([]proto.Message, 0, len(g.Messages())), g.Messages()[:i]...)
		}
		out = append(out, gc)
	}
	if out == nil {
		return g
	}
	return &Group{msgs: out} // same names in the same order: still sorted
}

// grpcTargets are the listener names for a virtual host's domains: each domain without a
// port, joined with the port (IPv6 addresses bracketed).
func grpcTargets(domains []string, port string) []string {
	var out []string
	for _, d := range domains {
		if strings.Contains(d, "*") || strings.HasSuffix(d, ":"+port) {
			continue
		}
		if _, _, err := net.SplitHostPort(d); err == nil {
			continue // a domain with a port
		}
		out = append(out, net.JoinHostPort(d, port))
	}
	return out
}

// grpcListener is listener name: an api_listener whose routes come over ADS as routeName.
func grpcListener(name, routeName string) *listenerpb.Listener {
	hcm := &hcmpb.HttpConnectionManager{
		RouteSpecifier: &hcmpb.HttpConnectionManager_Rds{Rds: &hcmpb.Rds{
			RouteConfigName: routeName,
			ConfigSource: &corepb.ConfigSource{
				ConfigSourceSpecifier: &corepb.ConfigSource_Ads{Ads: &corepb.AggregatedConfigSource{}},
				ResourceApiVersion:    corepb.ApiVersion_V3,
			},
		}},
		HttpFilters: []*hcmpb.HttpFilter{
			{Name: FaultFilter, ConfigType: &hcmpb.HttpFilter_TypedConfig{TypedConfig: mustAny(&faultpb.HTTPFault{})}},
			routerHTTPFilter(),
		},
	}
	return &listenerpb.Listener{Name: name, ApiListener: &listenerpb.ApiListener{ApiListener: mustAny(hcm)}}
}
