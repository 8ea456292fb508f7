package translate

import (
	"slices"

	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tcppb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// Long-lived connections: opaque TCP listeners and keepalive settings.

// applyTCPKeepalive sets upstream_connection_options.tcp_keepalive as Istio's
// applyTCPKeepalive does: meshConfig.tcpKeepalive first, then the DestinationRule's
// connectionPool.tcp.tcpKeepalive field by field. Nothing set leaves the field unset (the
// sidecar then uses Lucid's default; Envoy would use none).
func applyTCPKeepalive(c *clusterpb.Cluster, mesh, dr *networkingv1alpha3.ConnectionPoolSettings_TCPSettings_TcpKeepalive) {
	if mesh == nil && dr == nil {
		return
	}
	ka := &corepb.TcpKeepalive{}
	for _, k := range []*networkingv1alpha3.ConnectionPoolSettings_TCPSettings_TcpKeepalive{mesh, dr} {
		if k == nil {
			continue
		}
		if k.GetProbes() > 0 {
			ka.KeepaliveProbes = wrapperspb.UInt32(k.GetProbes())
		}
		if d := k.GetTime(); d != nil {
			ka.KeepaliveTime = wrapperspb.UInt32(uint32(d.AsDuration().Seconds()))
		}
		if d := k.GetInterval(); d != nil {
			ka.KeepaliveInterval = wrapperspb.UInt32(uint32(d.AsDuration().Seconds()))
		}
	}
	c.UpstreamConnectionOptions = &clusterpb.UpstreamConnectionOptions{TcpKeepalive: ka}
}

// http2Keepalive is http2_protocol_options.connection_keepalive from the DestinationRule's
// connectionPool.http.http2KeepAlive (istio.io/api 1.31); nil when unset.
func http2Keepalive(h *networkingv1alpha3.ConnectionPoolSettings_HTTPSettings) *corepb.KeepaliveSettings {
	k := h.GetHttp2KeepAlive()
	if k == nil {
		return nil
	}
	out := &corepb.KeepaliveSettings{}
	if d := k.GetInterval(); d != nil {
		out.Interval = durationpb.New(d.AsDuration())
	}
	if d := k.GetTimeout(); d != nil {
		out.Timeout = durationpb.New(d.AsDuration())
	}
	return out
}

// tcpListeners are the outbound listeners of opaque TCP service ports (protocol TCP, TLS,
// HTTPS, ...; Istio's tcp_proxy listeners): 0.0.0.0_<port>, bind_to_port false, one
// tcp_proxy chain to the port's service cluster, with the DestinationRule's
// tcp.idleTimeout. Local mode reaches them through the explicit proxy with CONNECT.
// A port that also carries HTTP is left to the HTTP listener; when several services share
// a TCP port, the first by host name gets it (Istio splits them by service VIP, which local
// mode does not have).
func (g *generator) tcpListeners() []proto.Message {
	http := map[uint32]bool{}
	for _, p := range g.httpPorts() {
		http[p] = true
	}
	type target struct {
		svc  *model.Service
		port model.Port
	}
	byPort := map[uint32]target{}
	for _, port := range g.listenerPorts() {
		if http[port] {
			continue
		}
		for _, s := range g.scope.ServicesOn(port) {
			if p, _ := s.Port(port); !p.IsHTTP() {
				byPort[port] = target{s, p}
				break
			}
		}
	}
	ports := make([]uint32, 0, len(byPort))
	for p := range byPort {
		ports = append(ports, p)
	}
	slices.Sort(ports)
	out := make([]proto.Message, 0, len(ports))
	for _, p := range ports {
		tg := byPort[p]
		cluster := ClusterName("outbound", p, "", tg.svc.Host)
		tp := &tcppb.TcpProxy{StatPrefix: cluster, ClusterSpecifier: &tcppb.TcpProxy_Cluster{Cluster: cluster}}
		dr := g.m.DestinationRule(g.p.Namespace, g.p.Labels, tg.svc.Host)
		if d := dr.Policy(p, "").GetConnectionPool().GetTcp().GetIdleTimeout(); d != nil {
			tp.IdleTimeout = durationpb.New(d.AsDuration())
		}
		out = append(out, &listenerpb.Listener{
			Name:             "0.0.0.0_" + itoa(p),
			Address:          socketAddress("0.0.0.0", p),
			BindToPort:       wrapperspb.Bool(false),
			TrafficDirection: corepb.TrafficDirection_OUTBOUND,
			FilterChains: []*listenerpb.FilterChain{{
				Name:    cluster,
				Filters: []*listenerpb.Filter{{Name: TCPProxyFilter, ConfigType: &listenerpb.Filter_TypedConfig{TypedConfig: mustAny(tp)}}},
			}},
		})
	}
	return append(out, g.sharedPortListeners(http)...) // tcpvip.go: <address>_<port> under capture
}
