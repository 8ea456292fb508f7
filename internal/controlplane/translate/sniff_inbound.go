package translate

import (
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	httpinspectorpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/http_inspector/v3"
	"google.golang.org/protobuf/proto"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// Protocol sniffing on the inbound side (Istio's auto-detection on virtualInbound): a port
// of the workload whose protocol no service declares gets an HTTP chain and a TCP chain,
// picked per connection by what the TLS and HTTP inspectors read (the sidecar's
// proxy/sniff.go), as Istio builds them:
//
//	plaintext HTTP/1.0, HTTP/1.1 or h2c (raw_buffer, http ALPNs) → the HTTP chain
//	other plaintext (raw_buffer)                                 → the TCP chain
//	mutual TLS offering an HTTP ALPN (istio-http/1.1, …)         → the HTTP chain, TLS terminated
//	other TLS (mutual TLS, or TLS the app terminates)             → the TCP chain
//
// With PeerAuthentication the TLS chains terminate mutual TLS (PERMISSIVE keeps the
// plaintext ones, STRICT only them); without it, TLS is passed to the app by the TCP chain.
// No detection timeout (Istio's protocolDetectionTimeout 0): a server-first protocol on an
// undeclared port waits for the client; declared ports are never sniffed.

// httpOverTLSALPNs are the application protocols of an inbound TLS chain for HTTP
// (istioctl's "App: HTTP TLS").
var httpOverTLSALPNs = []string{"http/1.0", "http/1.1", "h2c", "istio-http/1.0", "istio-http/1.1", "istio-h2"}

// inboundSniffed reports whether an inbound port leaves its protocol undeclared.
func inboundSniffed(ip model.InboundPort) bool { return ip.Protocol == "" }

// inboundSniffChains are an undeclared port's chains: httpChain's and tcpChain's variants
// for its PeerAuthentication mode, each narrowed to the bytes it takes.
func (g *generator) inboundSniffChains(ip model.InboundPort, httpChain, tcpChain *listenerpb.FilterChain) []*listenerpb.FilterChain {
	var out []*listenerpb.FilterChain
	for _, fc := range g.inboundMTLSChains(ip, httpChain) { // peerauth.go
		if fc.FilterChainMatch.TransportProtocol == "tls" {
			fc.FilterChainMatch.ApplicationProtocols = httpOverTLSALPNs
		} else {
			fc.FilterChainMatch.TransportProtocol, fc.FilterChainMatch.ApplicationProtocols = "raw_buffer", plaintextHTTPALPNs
		}
		out = append(out, fc)
	}
	tcp := g.inboundMTLSChains(ip, tcpChain)
	if len(tcp) == 1 && tcp[0].FilterChainMatch.TransportProtocol == "" {
		// Plaintext only: opaque bytes, and TLS the app terminates (Envoy narrows by
		// transport before ALPN, so each needs a chain of its own).
		tls := proto.Clone(tcp[0]).(*listenerpb.FilterChain)
		tls.FilterChainMatch.TransportProtocol = "tls"
		tcp[0].FilterChainMatch.TransportProtocol = "raw_buffer"
		tcp = append(tcp, tls)
	}
	return append(out, tcp...)
}

// inboundHTTPInspector adds the HTTP inspector to virtualInbound when a chain matches on
// plaintext application protocols (after the TLS inspector, as Istio orders them).
func inboundHTTPInspector(l *listenerpb.Listener) {
	for _, fc := range l.GetFilterChains() {
		if m := fc.GetFilterChainMatch(); m.GetTransportProtocol() == "raw_buffer" && len(m.GetApplicationProtocols()) > 0 {
			l.ListenerFilters = append(l.ListenerFilters, &listenerpb.ListenerFilter{
				Name:       HTTPInspectorFilter,
				ConfigType: &listenerpb.ListenerFilter_TypedConfig{TypedConfig: mustAny(&httpinspectorpb.HttpInspector{})},
			})
			return
		}
	}
}
