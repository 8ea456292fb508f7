package xdsclient

import (
	"time"

	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// decodeTCPKeepalive reads upstream_connection_options.tcp_keepalive (whole seconds; unset
// fields stay 0, which the data plane fills with its defaults).
func decodeTCPKeepalive(c *clusterpb.Cluster, out *resource.Cluster) {
	k := c.GetUpstreamConnectionOptions().GetTcpKeepalive()
	if k == nil {
		return
	}
	out.TCPKeepalive = &resource.TCPKeepalive{
		Probes:   k.GetKeepaliveProbes().GetValue(),
		Time:     time.Duration(k.GetKeepaliveTime().GetValue()) * time.Second,
		Interval: time.Duration(k.GetKeepaliveInterval().GetValue()) * time.Second,
	}
}

// decodeHTTP2Keepalive reads http2_protocol_options.connection_keepalive.
func decodeHTTP2Keepalive(h2 *corepb.Http2ProtocolOptions, out *resource.Cluster) {
	k := h2.GetConnectionKeepalive()
	if k == nil {
		return
	}
	out.HTTP2Keepalive = &resource.HTTP2Keepalive{Interval: durationOr(k.GetInterval(), 0), Timeout: durationOr(k.GetTimeout(), 0)}
}
