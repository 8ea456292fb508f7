package translate

import (
	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	faultpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	tlsinspectorpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// A router proxy (Istio's ingress gateway) gets, instead of a sidecar's listeners and
// routes, one listener per port of the Gateways that select it (model.MergeGateways):
//
//	plaintext HTTP servers   → one chain, HCM with RDS "http.<port>"
//	HTTPS servers (SIMPLE, MUTUAL) → one chain per server matching its SNI hosts, TLS
//	                           termination, HCM with RDS "https.<port>.<port name>.<gw>.<ns>"
//	TLS PASSTHROUGH servers  → one chain per VirtualService tls match (sniHosts) → tcp_proxy
//	TLS SIMPLE/MUTUAL servers → one chain: TLS termination → tcp_proxy from a tcp route
//	TCP servers              → one chain → tcp_proxy from a tcp route
//
// Routes are gateway_routes.go, TLS contexts and tcp_proxy gateway_tls.go; clusters and
// endpoints are the sidecar's (cluster.go).

// Names Envoy registers for the gateway's listener parts.
const (
	TLSInspectorFilter = "envoy.filters.listener.tls_inspector"
	TLSTransportSocket = "envoy.transport_sockets.tls"
)

// gatewayResources are a router's listeners and RouteConfigurations.
func (g *generator) gatewayResources() (listeners, routes []proto.Message) {
	mg := g.m.MergeGateways(g.p)
	for _, gp := range mg.Ports {
		if l := g.gatewayListener(gp); l != nil {
			listeners = append(listeners, l)
		}
		seen := map[string]bool{}
		for _, s := range gp.Servers {
			if s.RouteName == "" || seen[s.RouteName] {
				continue
			}
			seen[s.RouteName] = true
			var servers []*model.GatewayServer
			for _, o := range gp.Servers {
				if o.RouteName == s.RouteName {
					servers = append(servers, o)
				}
			}
			routes = append(routes, g.gatewayRouteConfig(s.RouteName, servers))
		}
	}
	return listeners, routes
}

// gatewayListener is "0.0.0.0_<port>"; nil when no server on the port yields a filter
// chain (Envoy rejects a listener without one, so Istio leaves it out).
func (g *generator) gatewayListener(gp *model.GatewayPort) *listenerpb.Listener {
	port := gp.Number
	l := &listenerpb.Listener{
		Name:             "0.0.0.0_" + itoa(port),
		Address:          socketAddress("0.0.0.0", port),
		TrafficDirection: corepb.TrafficDirection_OUTBOUND,
	}
	first := gp.Servers[0]
	switch {
	case !first.TLSServer() && first.PlaintextHTTP():
		l.FilterChains = []*listenerpb.FilterChain{{
			Filters: []*listenerpb.Filter{g.gatewayHCM("http."+itoa(port), "outbound_0.0.0.0_"+itoa(port))},
		}}
	case !first.TLSServer():
		if f := g.gatewayTCPFilter(first); f != nil {
			l.FilterChains = []*listenerpb.FilterChain{{Filters: g.gatewayTCPFilters(f)}} // authz_gateway.go
		}
	default:
		sni := map[string]bool{} // SNI hosts already matched by a passthrough chain of this listener
		for _, s := range gp.Servers {
			l.FilterChains = append(l.FilterChains, g.gatewayTLSChains(s, sni)...)
		}
	}
	if len(l.FilterChains) == 0 {
		return nil
	}
	for _, fc := range l.FilterChains {
		if m := fc.GetFilterChainMatch(); len(m.GetServerNames()) > 0 || m.GetTransportProtocol() != "" {
			l.ListenerFilters = []*listenerpb.ListenerFilter{{
				Name:       TLSInspectorFilter,
				ConfigType: &listenerpb.ListenerFilter_TypedConfig{TypedConfig: mustAny(&tlsinspectorpb.TlsInspector{})},
			}}
			break
		}
	}
	return l
}

// gatewayTLSChains are the filter chains of one server on a TLS port.
func (g *generator) gatewayTLSChains(s *model.GatewayServer, sni map[string]bool) []*listenerpb.FilterChain {
	t := s.Spec.GetTls()
	switch {
	case s.TerminatesHTTPS():
		ctx := g.downstreamTLS(t, true)
		if ctx == nil {
			return nil
		}
		statPrefix := s.Spec.GetName()
		if statPrefix == "" {
			statPrefix = "outbound_0.0.0.0_" + itoa(s.Port())
		}
		return []*listenerpb.FilterChain{{
			Name:             s.RouteName,
			FilterChainMatch: serverNamesMatch(s.SNIHosts()),
			TransportSocket:  tlsTransportSocket(ctx),
			Filters:          []*listenerpb.Filter{g.gatewayHCM(s.RouteName, statPrefix)},
		}}
	case t.GetMode() == networkingv1alpha3.ServerTLSSettings_PASSTHROUGH:
		return g.passthroughChains(s, sni)
	case s.Protocol == "TLS":
		ctx := g.downstreamTLS(t, false)
		f := g.gatewayTCPFilter(s)
		if ctx == nil || f == nil {
			return nil
		}
		return []*listenerpb.FilterChain{{
			FilterChainMatch: serverNamesMatch(s.SNIHosts()),
			TransportSocket:  tlsTransportSocket(ctx),
			Filters:          g.gatewayTCPFilters(f),
		}}
	}
	// AUTO_PASSTHROUGH and ISTIO_MUTUAL need the mesh's own certificates and SNI-DNAT
	// clusters, which Lucid does not build; a plaintext server on a TLS port gets nothing.
	return nil
}

// serverNamesMatch matches the server's SNI hosts; none when a host is "*" (the chain
// then takes every TLS connection no other chain matches).
func serverNamesMatch(hosts []string) *listenerpb.FilterChainMatch {
	for _, h := range hosts {
		if h == "*" {
			return nil
		}
	}
	return &listenerpb.FilterChainMatch{ServerNames: hosts}
}

// gatewayHCM is the HTTP connection manager of a gateway chain: Istio's gateway settings
// (the client's address is the remote address, websocket upgrades, no stream idle timeout).
func (g *generator) gatewayHCM(routeName, statPrefix string) *listenerpb.Filter {
	h := &hcmpb.HttpConnectionManager{
		StatPrefix: statPrefix,
		RouteSpecifier: &hcmpb.HttpConnectionManager_Rds{Rds: &hcmpb.Rds{
			ConfigSource: adsSource(), RouteConfigName: routeName,
		}},
		HttpFilters: append(AuthHTTPFilters(g.m, g.p), // authz.go: the policies selecting the gateway
			&hcmpb.HttpFilter{Name: FaultFilter, ConfigType: &hcmpb.HttpFilter_TypedConfig{TypedConfig: mustAny(&faultpb.HTTPFault{})}},
			routerHTTPFilter(),
		),
		UpgradeConfigs:    []*hcmpb.HttpConnectionManager_UpgradeConfig{{UpgradeType: "websocket"}},
		StreamIdleTimeout: durationpb.New(0),
		UseRemoteAddress:  wrapperspb.Bool(true),
		XffNumTrustedHops: g.numTrustedProxies(), // xff.go
		ServerName:        serverName,
	}
	setPathNormalization(g.m, h) // pathnorm.go
	return &listenerpb.Filter{Name: HCMFilter, ConfigType: &listenerpb.Filter_TypedConfig{TypedConfig: mustAny(h)}}
}
