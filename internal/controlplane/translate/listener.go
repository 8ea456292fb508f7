package translate

import (
	"slices"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	faultpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	routerpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcppb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// Filter names as Envoy registers them.
const (
	HCMFilter      = "envoy.filters.network.http_connection_manager"
	TCPProxyFilter = "envoy.filters.network.tcp_proxy"
	FaultFilter    = "envoy.filters.http.fault"
	RouterFilter   = "envoy.filters.http.router"
	serverName     = "istio-envoy"
)

// outboundListeners are a sidecar's 0.0.0.0_<port> listeners: HTTP ports with RDS,
// opaque TCP ports with tcp_proxy.
func (g *generator) outboundListeners() []proto.Message {
	var out []proto.Message
	for _, p := range g.httpPorts() {
		l := &listenerpb.Listener{
			Name:             "0.0.0.0_" + itoa(p),
			Address:          socketAddress("0.0.0.0", p),
			BindToPort:       wrapperspb.Bool(false),
			TrafficDirection: corepb.TrafficDirection_OUTBOUND,
			FilterChains: []*listenerpb.FilterChain{{Filters: []*listenerpb.Filter{g.hcmFilter(&hcmpb.HttpConnectionManager{
				StatPrefix: "outbound_0.0.0.0_" + itoa(p),
				RouteSpecifier: &hcmpb.HttpConnectionManager_Rds{Rds: &hcmpb.Rds{
					ConfigSource: adsSource(), RouteConfigName: itoa(p),
				}},
				HttpFilters: []*hcmpb.HttpFilter{
					{Name: FaultFilter, ConfigType: &hcmpb.HttpFilter_TypedConfig{TypedConfig: mustAny(&faultpb.HTTPFault{})}},
					routerHTTPFilter(),
				},
			})}}},
		}
		g.addSniffing(l, p) // sniff.go: no protocol declared
		out = append(out, l)
	}
	return append(out, g.tcpListeners()...) // streams.go: opaque TCP ports
}

// httpPorts are the HTTP-family service port numbers the proxy has a listener for, sorted:
// ports on which the scope's egress listener for the port imports a service (services a
// Sidecar imports only as VirtualService destinations get clusters, no listener). TCP
// ports get tcp_proxy listeners (streams.go).
func (g *generator) httpPorts() []uint32 {
	var ports []uint32
	for _, p := range g.listenerPorts() {
		for _, s := range g.scope.ServicesOn(p) {
			if sp, _ := s.Port(p); sp.IsHTTP() {
				ports = append(ports, p)
				break
			}
		}
	}
	return ports
}

// listenerPorts are the port numbers of the scope's visible services with a listener
// importing them, sorted.
func (g *generator) listenerPorts() []uint32 {
	var ports []uint32
	for _, s := range g.services {
		for _, p := range g.scope.ServicePorts(s) {
			ports = append(ports, p.Number)
		}
	}
	slices.Sort(ports)
	ports = slices.Compact(ports)
	return slices.DeleteFunc(ports, func(p uint32) bool { return len(g.scope.ServicesOn(p)) == 0 })
}

func routerHTTPFilter() *hcmpb.HttpFilter {
	return &hcmpb.HttpFilter{Name: RouterFilter, ConfigType: &hcmpb.HttpFilter_TypedConfig{TypedConfig: mustAny(&routerpb.Router{})}}
}

// hcmFilter fills the settings Istio puts on every sidecar HCM and wraps it in a filter.
func (g *generator) hcmFilter(h *hcmpb.HttpConnectionManager) *listenerpb.Filter {
	h.StreamIdleTimeout = durationpb.New(0)
	setPathNormalization(g.m, h) // pathnorm.go
	h.UseRemoteAddress = wrapperspb.Bool(false)
	h.ServerName = serverName
	return &listenerpb.Filter{Name: HCMFilter, ConfigType: &listenerpb.Filter_TypedConfig{TypedConfig: mustAny(h)}}
}

func tcpProxyFilter(statPrefix, cluster string) *listenerpb.Filter {
	return &listenerpb.Filter{Name: TCPProxyFilter, ConfigType: &listenerpb.Filter_TypedConfig{TypedConfig: mustAny(&tcppb.TcpProxy{
		StatPrefix: statPrefix, ClusterSpecifier: &tcppb.TcpProxy_Cluster{Cluster: cluster},
	})}}
}

func (g *generator) virtualOutbound() *listenerpb.Listener {
	cluster := PassthroughCluster
	if !g.scope.OutboundAllowAny() {
		cluster = BlackHoleCluster
	}
	return &listenerpb.Listener{
		Name:             VirtualOutbound,
		Address:          socketAddress("0.0.0.0", OutboundPort),
		UseOriginalDst:   wrapperspb.Bool(true),
		TrafficDirection: corepb.TrafficDirection_OUTBOUND,
		DefaultFilterChain: &listenerpb.FilterChain{
			Name:    "PassthroughFilterChain",
			Filters: []*listenerpb.Filter{tcpProxyFilter(cluster, cluster)},
		},
	}
}

func (g *generator) virtualInbound() *listenerpb.Listener {
	l := &listenerpb.Listener{
		Name:             VirtualInbound,
		Address:          socketAddress("0.0.0.0", InboundPort),
		UseOriginalDst:   wrapperspb.Bool(true),
		TrafficDirection: corepb.TrafficDirection_INBOUND,
		DefaultFilterChain: &listenerpb.FilterChain{
			Name:    "InboundPassthroughFilterChain",
			Filters: []*listenerpb.Filter{tcpProxyFilter(InboundPassthroughCluster, InboundPassthroughCluster)},
		},
	}
	for _, ip := range g.m.ProxyInboundPorts(g.p) {
		cluster := InboundClusterName(ip.Port)
		chain := &listenerpb.FilterChain{
			Name:             "0.0.0.0_" + itoa(ip.Port),
			FilterChainMatch: &listenerpb.FilterChainMatch{DestinationPort: wrapperspb.UInt32(ip.Port)},
		}
		httpChain := func() *listenerpb.FilterChain {
			fc := proto.Clone(chain).(*listenerpb.FilterChain)
			fc.Filters = []*listenerpb.Filter{g.hcmFilter(&hcmpb.HttpConnectionManager{
				StatPrefix:     "inbound_0.0.0.0_" + itoa(ip.Port),
				RouteSpecifier: &hcmpb.HttpConnectionManager_RouteConfig{RouteConfig: inboundRouteConfig(ip)},
				HttpFilters:    append(g.inboundAuthHTTPFilters(), routerHTTPFilter()), // authz.go
			})}
			return fc
		}
		tcpChain := func() *listenerpb.FilterChain {
			fc := proto.Clone(chain).(*listenerpb.FilterChain)
			fc.Filters = append(g.inboundAuthTCPFilters(), tcpProxyFilter(cluster, cluster)) // authz.go
			return fc
		}
		switch {
		case inboundSniffed(ip): // sniff_inbound.go
			l.FilterChains = append(l.FilterChains, g.inboundSniffChains(ip, httpChain(), tcpChain())...)
		case ip.IsHTTP():
			l.FilterChains = append(l.FilterChains, g.inboundMTLSChains(ip, httpChain())...) // peerauth.go
		default:
			l.FilterChains = append(l.FilterChains, g.inboundMTLSChains(ip, tcpChain())...)
		}
	}
	g.originalSrc(l) // capture.go: TPROXY
	inboundTLSInspector(l)
	inboundHTTPInspector(l) // sniff_inbound.go
	return l
}

// inboundOperation is the inbound route's decorator: "<service host>:<port>/*".
func inboundOperation(ip model.InboundPort) string {
	host := "inbound"
	if ip.Service != nil {
		host = ip.Service.Host
	}
	return host + ":" + itoa(ip.Port) + "/*"
}

// inboundRouteConfig is Istio's inbound route: everything to the local app, no timeout,
// and the inbound default retry (reset-before-request, not for gRPC ports).
func inboundRouteConfig(ip model.InboundPort) *routepb.RouteConfiguration {
	cluster := InboundClusterName(ip.Port)
	r := &routepb.Route{
		Name:  "default",
		Match: &routepb.RouteMatch{PathSpecifier: &routepb.RouteMatch_Prefix{Prefix: "/"}},
		Action: &routepb.Route_Route{Route: &routepb.RouteAction{
			ClusterSpecifier: &routepb.RouteAction_Cluster{Cluster: cluster},
			Timeout:          durationpb.New(0),
			MaxStreamDuration: &routepb.RouteAction_MaxStreamDuration{
				MaxStreamDuration: durationpb.New(0), GrpcTimeoutHeaderMax: durationpb.New(0),
			},
		}},
		Decorator: &routepb.Decorator{Operation: inboundOperation(ip)},
	}
	if ip.Protocol != "GRPC" && ip.Protocol != "GRPC-WEB" {
		r.GetRoute().RetryPolicy = &routepb.RetryPolicy{RetryOn: "reset-before-request", NumRetries: wrapperspb.UInt32(2)}
	}
	return &routepb.RouteConfiguration{
		Name:             cluster,
		ValidateClusters: wrapperspb.Bool(false),
		VirtualHosts: []*routepb.VirtualHost{{
			Name:    "inbound|http|" + itoa(ip.Port),
			Domains: []string{"*"},
			Routes:  []*routepb.Route{r},
		}},
	}
}
