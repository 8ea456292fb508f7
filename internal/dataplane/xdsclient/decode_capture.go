package xdsclient

import (
	"fmt"
	"net/netip"

	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	originalsrcpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/original_src/v3"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// decodeBindConfig reads upstream_bind_config: the source address of the cluster's
// upstream connections. Istio sets 127.0.0.6 on InboundPassthroughCluster so that the
// sidecar's connection to the app is not captured again (the capture rules let 127.0.0.6
// through). Only an address without a port is supported (port 0: any).
func decodeBindConfig(c *clusterpb.Cluster, out *resource.Cluster) error {
	b := c.GetUpstreamBindConfig()
	if b == nil {
		return nil
	}
	sa := b.GetSourceAddress()
	if sa == nil {
		return fmt.Errorf("upstream_bind_config: source_address is required")
	}
	addr, err := netip.ParseAddr(sa.GetAddress())
	if err != nil {
		return fmt.Errorf("upstream_bind_config.source_address.address: %q is not an IP address", sa.GetAddress())
	}
	if sa.GetPortValue() != 0 {
		return fmt.Errorf("upstream_bind_config.source_address.port_value: %d: only 0 (any port) is supported", sa.GetPortValue())
	}
	if len(b.GetExtraSourceAddresses()) > 0 || b.GetFreebind() != nil || len(b.GetSocketOptions()) > 0 {
		return fmt.Errorf("upstream_bind_config: only source_address is supported")
	}
	out.BindAddress = addr.Unmap()
	return nil
}

// Names of Envoy's original_src listener filter, which Istio adds to virtualInbound under
// TPROXY interception: the sidecar's connections to the app come from the client's address.
const (
	originalSrcName = "envoy.filters.listener.original_src"
	originalSrcURL  = "type.googleapis.com/envoy.extensions.filters.listener.original_src.v3.OriginalSrc"
)

func isOriginalSrc(lf *listenerpb.ListenerFilter) bool {
	return lf.GetName() == originalSrcName || lf.GetTypedConfig().GetTypeUrl() == originalSrcURL
}

// decodeOriginalSrc reads an original_src listener filter's mark into out. bind_port (the
// client's port too) is refused: two upstream connections of one client would collide.
func decodeOriginalSrc(lf *listenerpb.ListenerFilter, out *resource.Listener) error {
	var cfg originalsrcpb.OriginalSrc
	if tc := lf.GetTypedConfig(); tc != nil {
		if err := tc.UnmarshalTo(&cfg); err != nil {
			return fmt.Errorf("typed_config: %w", err)
		}
	}
	if cfg.GetBindPort() {
		return fmt.Errorf("bind_port: only false (any port) is supported")
	}
	out.OriginalSrcMark = cfg.GetMark()
	return nil
}
