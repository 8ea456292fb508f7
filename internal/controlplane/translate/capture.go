package translate

import (
	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
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
