package translate

import (
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	httpinspectorpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/http_inspector/v3"
	tlsinspectorpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// Protocol sniffing (Istio's auto-detection) on outbound ports whose protocol no service
// declares (a Kubernetes port named without a protocol prefix, a ServiceEntry port without
// protocol): the port's 0.0.0.0_<port> listener gets Envoy's tls_inspector and
// http_inspector and three kinds of chains, chosen per captured connection by what the
// inspectors read (the sidecar's proxy/sniff.go):
//
//	plaintext HTTP/1.0, HTTP/1.1 or h2c → the HTTP chain (routes by Host), first: the
//	                                      explicit proxy and CONNECT keep using it
//	TLS whose SNI is a service's host   → tcp_proxy to that service's cluster (passthrough)
//	anything else (opaque, other SNIs)  → tcp_proxy to the port's first service, as a TCP port
//
// Istio's protocolDetectionTimeout is 0 (no timeout): a server-first protocol on such a
// port waits for the client, as in Istio; declared TCP ports are never sniffed.

// HTTPInspectorFilter is Envoy's HTTP inspector listener filter.
const HTTPInspectorFilter = "envoy.filters.listener.http_inspector"

// plaintextHTTPALPNs are the application protocols the HTTP inspector reports (Istio's).
var plaintextHTTPALPNs = []string{"http/1.0", "http/1.1", "h2c"}

// sniffedServices are the services on port p when none declares the port's protocol
// (nil otherwise: the port is served as declared).
func (g *generator) sniffedServices(p uint32) []*model.Service {
	svcs := g.scope.ServicesOn(p)
	for _, s := range svcs {
		if sp, _ := s.Port(p); sp.Protocol != "" {
			return nil
		}
	}
	return svcs
}

// addSniffing turns the HTTP listener l of port p into an auto-detecting one when no
// service declares the port's protocol.
func (g *generator) addSniffing(l *listenerpb.Listener, p uint32) {
	svcs := g.sniffedServices(p)
	if len(svcs) == 0 || len(l.GetFilterChains()) != 1 {
		return
	}
	l.FilterChains[0].FilterChainMatch = &listenerpb.FilterChainMatch{TransportProtocol: "raw_buffer", ApplicationProtocols: plaintextHTTPALPNs}
	for _, s := range svcs {
		cluster := ClusterName("outbound", p, "", s.Host)
		l.FilterChains = append(l.FilterChains, &listenerpb.FilterChain{
			Name:             cluster,
			FilterChainMatch: &listenerpb.FilterChainMatch{TransportProtocol: "tls", ServerNames: []string{s.Host}},
			Filters:          []*listenerpb.Filter{tcpProxyFilter(cluster, cluster)},
		})
	}
	// Opaque bytes and TLS without a known SNI: tcp_proxy to the first service. Envoy narrows
	// by transport protocol before ALPN without going back, so plaintext needs a chain of
	// its own beside the HTTP one; TLS falls to the default chain.
	cluster := ClusterName("outbound", p, "", svcs[0].Host)
	l.FilterChains = append(l.FilterChains, &listenerpb.FilterChain{
		Name:             cluster + "-opaque",
		FilterChainMatch: &listenerpb.FilterChainMatch{TransportProtocol: "raw_buffer"},
		Filters:          []*listenerpb.Filter{tcpProxyFilter(cluster, cluster)},
	})
	l.DefaultFilterChain = &listenerpb.FilterChain{Name: cluster + "-tls", Filters: []*listenerpb.Filter{tcpProxyFilter(cluster, cluster)}}
	l.ListenerFilters = append(l.ListenerFilters,
		&listenerpb.ListenerFilter{Name: TLSInspectorFilter, ConfigType: &listenerpb.ListenerFilter_TypedConfig{TypedConfig: mustAny(&tlsinspectorpb.TlsInspector{})}},
		&listenerpb.ListenerFilter{Name: HTTPInspectorFilter, ConfigType: &listenerpb.ListenerFilter_TypedConfig{TypedConfig: mustAny(&httpinspectorpb.HttpInspector{})}},
	)
}
