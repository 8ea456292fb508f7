package translate

import (
	"net"
	"net/netip"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlspb "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// Proxyless gRPC servers (xds.NewGRPCServer in grpc-go), as Istio's grpcgen serves them:
// a server asks for the listener of the address it listens on, named by its bootstrap's
// server_listener_resource_name_template, Istio's "xds.istio.io/grpc/lds/inbound/%s"
// (e.g. "xds.istio.io/grpc/lds/inbound/10.0.0.5:9090"). For every inbound port of its
// workload (the ports of the services selecting it) a gRPC proxy gets that listener
// for its own address and for the wildcard addresses 0.0.0.0 and [::]: the address
// itself (gRPC checks it against the one it listens on) and one filter chain, an HTTP
// connection manager with the router and an inline route configuration that accepts
// every RPC (a non-forwarding route: the server handles it), plaintext or, when the
// port's PeerAuthentication asks for mutual TLS, with a DownstreamTlsContext whose
// certificates come from the bootstrap's certificate provider "default" (grpc_tls.go).
// gRPC has no PERMISSIVE: it cannot tell TLS from plaintext on one port, so PERMISSIVE
// is plaintext, or mutual TLS when clients send it anyway (auto mTLS: a workload
// counted as having a sidecar), as Istio does for a proxyless server with tlsMode "istio".

// GRPCServerListenerPrefix is the name prefix of a proxyless gRPC server's listeners
// (Istio's grpcxds.ServerListenerNamePrefix).
const GRPCServerListenerPrefix = "xds.istio.io/grpc/lds/inbound/"

// grpcServerListeners are proxy p's server-side listeners.
func grpcServerListeners(m *model.Mesh, p *model.Proxy) []proto.Message {
	var out []proto.Message
	for _, ip := range m.ProxyInboundPorts(p) {
		if !ip.IsHTTP() {
			continue // gRPC serves HTTP/2 only
		}
		chain := grpcServerChain(grpcServerMTLS(m, p, ip.Port))
		for _, host := range grpcServerHosts(p.IP) {
			name := GRPCServerListenerPrefix + net.JoinHostPort(host, itoa(ip.Port))
			out = append(out, &listenerpb.Listener{
				Name: name,
				Address: &corepb.Address{Address: &corepb.Address_SocketAddress{SocketAddress: &corepb.SocketAddress{
					Address: host, PortSpecifier: &corepb.SocketAddress_PortValue{PortValue: ip.Port},
				}}},
				FilterChains: []*listenerpb.FilterChain{chain},
			})
		}
	}
	return out
}

// grpcServerHosts are the addresses a server of proxy address ip may listen on.
func grpcServerHosts(ip netip.Addr) []string {
	out := []string{"0.0.0.0", "::"}
	if ip.IsValid() && !ip.IsUnspecified() {
		out = append(out, ip.String())
	}
	return out
}

// grpcServerMTLS says whether proxy p's inbound port requires mutual TLS.
func grpcServerMTLS(m *model.Mesh, p *model.Proxy, port uint32) bool {
	if !m.MTLS() {
		return false
	}
	switch mode, _ := m.InboundMTLS(p, port); mode {
	case model.MTLSStrict:
		return true
	case model.MTLSPermissive:
		return m.AutoMTLS() && grpcServerHasIdentity(m, p)
	}
	return false
}

// grpcServerHasIdentity says whether clients count p's workload as one with a sidecar
// (model.Mesh.HasSidecar), and so send it mutual TLS by auto mTLS.
func grpcServerHasIdentity(m *model.Mesh, p *model.Proxy) bool {
	w := m.Workload(p)
	if w == nil {
		return false
	}
	return m.HasSidecar(&model.Endpoint{Workload: w.Name, Namespace: w.Namespace, Labels: w.Labels})
}

// grpcServerChain is the one filter chain of a server's listener.
func grpcServerChain(mtls bool) *listenerpb.FilterChain {
	suffix := "plaintext"
	if mtls {
		suffix = "mtls"
	}
	hcm := &hcmpb.HttpConnectionManager{
		RouteSpecifier: &hcmpb.HttpConnectionManager_RouteConfig{RouteConfig: &routepb.RouteConfiguration{
			Name: "inbound",
			VirtualHosts: []*routepb.VirtualHost{{
				Name:    "inbound",
				Domains: []string{"*"},
				Routes: []*routepb.Route{{
					Match:  &routepb.RouteMatch{PathSpecifier: &routepb.RouteMatch_Prefix{Prefix: "/"}},
					Action: &routepb.Route_NonForwardingAction{NonForwardingAction: &routepb.NonForwardingAction{}},
				}},
			}},
		}},
		HttpFilters: []*hcmpb.HttpFilter{routerHTTPFilter()},
	}
	fc := &listenerpb.FilterChain{
		Name:    "inbound-" + suffix,
		Filters: []*listenerpb.Filter{{Name: "inbound-hcm" + suffix, ConfigType: &listenerpb.Filter_TypedConfig{TypedConfig: mustAny(hcm)}}},
	}
	if mtls {
		fc.TransportSocket = tlsTransportSocket(&tlspb.DownstreamTlsContext{
			CommonTlsContext:         grpcTLSContext(nil),
			RequireClientCertificate: wrapperspb.Bool(true),
		})
	}
	return fc
}
