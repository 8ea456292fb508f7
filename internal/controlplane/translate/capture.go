package translate

import (
	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	originalsrcpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/original_src/v3"
)

// Transparent capture (docs/capture.md). A captured pod's sidecar serves virtualOutbound
// (15001) and virtualInbound (15006) as Istio's: virtualInbound's default chain sends a
// connection to an undeclared port to InboundPassthroughCluster, which dials the original
// destination (the pod's own address) from 127.0.0.6. The capture rules let 127.0.0.6
// through (`-o lo -s 127.0.0.6/32 -j RETURN`); from any other address the proxy's own
// connection to the pod's address would be redirected to 15006 again, a loop.

// InboundPassthroughSource is the source address of InboundPassthroughCluster's connections.
const InboundPassthroughSource = "127.0.0.6"

// inboundPassthroughBind sets Istio's upstream_bind_config on InboundPassthroughCluster.
func inboundPassthroughBind(c *clusterpb.Cluster) {
	if c.GetName() != InboundPassthroughCluster {
		return
	}
	c.UpstreamBindConfig = &corepb.BindConfig{SourceAddress: &corepb.SocketAddress{
		Address: InboundPassthroughSource, PortSpecifier: &corepb.SocketAddress_PortValue{PortValue: 0},
	}}
}

// TProxyMark is the mark of original_src (Istio's, and the capture rules' TPROXY mark).
const TProxyMark = 1337

// originalSrc adds Istio's envoy.filters.listener.original_src to virtualInbound for a
// sidecar captured with TPROXY (model.Proxy.TProxy): its connections to the app come from
// the client's own address, marked TProxyMark so the app's replies return to it.
func (g *generator) originalSrc(l *listenerpb.Listener) {
	if !g.p.TProxy {
		return
	}
	l.ListenerFilters = append(l.ListenerFilters, &listenerpb.ListenerFilter{
		Name:       "envoy.filters.listener.original_src",
		ConfigType: &listenerpb.ListenerFilter_TypedConfig{TypedConfig: mustAny(&originalsrcpb.OriginalSrc{Mark: TProxyMark})},
	})
}
