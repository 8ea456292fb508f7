package xdsclient

import (
	"fmt"
	"net/netip"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcppb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// Envoy defaults for listener fields.
const (
	defaultStreamIdleTimeout = 5 * 60e9  // HCM stream_idle_timeout: 5 min
	defaultIdleTimeout       = 60 * 60e9 // common idle_timeout and tcp_proxy idle_timeout: 1 h
)

// Filter names (and the type URLs Envoy resolves them by).
const (
	hcmFilterName      = "envoy.filters.network.http_connection_manager"
	tcpProxyFilterName = "envoy.filters.network.tcp_proxy"
	routerFilterName   = "envoy.filters.http.router"
	corsFilterName     = "envoy.filters.http.cors"

	hcmTypeURL      = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
	tcpProxyTypeURL = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
	routerTypeURL   = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
	faultTypeURL    = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
	corsTypeURL     = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"
)

// listenerFilters are the listener filters the sidecar accepts: they only classify the
// connection, which the sidecar does from its own listeners in local mode.
var listenerFilters = map[string]bool{
	"envoy.filters.listener.original_dst":                                                   true,
	"envoy.filters.listener.http_inspector":                                                 true,
	"envoy.filters.listener.tls_inspector":                                                  true,
	"type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst":     true,
	"type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector": true,
	"type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector":   true,
}

// ignoredNetworkFilters only add telemetry; they are accepted and not run.
var ignoredNetworkFilters = map[string]bool{
	"istio.metadata_exchange": true,
	"istio.stats":             true,
}

// ignoredHTTPFilters only add telemetry; they are accepted and not run.
var ignoredHTTPFilters = map[string]bool{
	"istio.metadata_exchange":       true,
	"istio.stats":                   true,
	"istio.alpn":                    true,
	"envoy.filters.http.grpc_stats": true,
}

// DecodeListener validates and converts a Listener.
func DecodeListener(l *listenerpb.Listener) (*resource.Listener, error) {
	if err := validate(l); err != nil {
		return nil, err
	}
	switch {
	case len(l.GetAdditionalAddresses()) > 0:
		return nil, fmt.Errorf("additional_addresses: not supported")
	case l.GetFilterChainMatcher() != nil:
		return nil, fmt.Errorf("filter_chain_matcher: not supported")
	case l.GetApiListener() != nil:
		return nil, fmt.Errorf("api_listener: not supported")
	case l.GetUdpListenerConfig() != nil:
		return nil, fmt.Errorf("udp_listener_config: not supported")
	case l.GetFcdsConfig() != nil:
		return nil, fmt.Errorf("fcds_config: not supported")
	}
	out := &resource.Listener{
		Name:           l.GetName(),
		BindToPort:     boolOr(l.GetBindToPort(), true),
		UseOriginalDst: l.GetUseOriginalDst().GetValue(),
	}
	if dv1 := l.GetDeprecatedV1(); dv1 != nil && dv1.GetBindToPort() != nil && l.GetBindToPort() == nil { //nolint:staticcheck // SA1019: Envoy still honours the deprecated field
		out.BindToPort = dv1.GetBindToPort().GetValue()
	}
	switch l.GetTrafficDirection() {
	case corepb.TrafficDirection_INBOUND:
		out.Direction = resource.Inbound
	case corepb.TrafficDirection_OUTBOUND:
		out.Direction = resource.Outbound
	}
	ap, err := decodeSocketAddress(l.GetAddress())
	if err != nil {
		return nil, fmt.Errorf("address.%w", err)
	}
	out.Address = ap
	for i, lf := range l.GetListenerFilters() {
		if isOriginalSrc(lf) { // decode_capture.go: TPROXY
			if err := decodeOriginalSrc(lf, out); err != nil {
				return nil, fmt.Errorf("listener_filters[%d] (%s).%w", i, originalSrcName, err)
			}
			continue
		}
		if !listenerFilters[lf.GetName()] && !listenerFilters[lf.GetTypedConfig().GetTypeUrl()] {
			return nil, fmt.Errorf("listener_filters[%d]: %q is not supported", i, lf.GetName())
		}
		out.TLSInspector = out.TLSInspector || isTLSInspector(lf)
	}
	for i, fc := range l.GetFilterChains() {
		c, err := decodeFilterChain(fc)
		if err != nil {
			return nil, fmt.Errorf("filter_chains[%d]%s.%w", i, chainLabel(fc), err)
		}
		out.FilterChains = append(out.FilterChains, c)
	}
	if err := checkChainOverlap(out.FilterChains); err != nil { // decode_sni.go
		return nil, err
	}
	if fc := l.GetDefaultFilterChain(); fc != nil {
		c, err := decodeFilterChain(fc)
		if err != nil {
			return nil, fmt.Errorf("default_filter_chain.%w", err)
		}
		out.DefaultChain = &c
	}
	return out, nil
}

func decodeSocketAddress(a *corepb.Address) (netip.AddrPort, error) {
	sa := a.GetSocketAddress()
	if sa == nil {
		return netip.AddrPort{}, fmt.Errorf("socket_address: required (pipe and internal addresses are not supported)")
	}
	if sa.GetProtocol() != corepb.SocketAddress_TCP {
		return netip.AddrPort{}, fmt.Errorf("socket_address.protocol: %s is not supported", sa.GetProtocol())
	}
	ip, err := netip.ParseAddr(sa.GetAddress())
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("socket_address.address: %q is not an IP address", sa.GetAddress())
	}
	port, ok := sa.GetPortSpecifier().(*corepb.SocketAddress_PortValue)
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("socket_address.port_value: required")
	}
	if port.PortValue > 65535 {
		return netip.AddrPort{}, fmt.Errorf("socket_address.port_value: %d is out of range", port.PortValue)
	}
	return netip.AddrPortFrom(ip, uint16(port.PortValue)), nil
}

func decodeFilterChain(fc *listenerpb.FilterChain) (resource.FilterChain, error) {
	out := resource.FilterChain{Name: fc.GetName()}
	m := fc.GetFilterChainMatch()
	out.Match = resource.FilterChainMatch{
		DestinationPort:      m.GetDestinationPort().GetValue(),
		TransportProtocol:    m.GetTransportProtocol(),
		ApplicationProtocols: m.GetApplicationProtocols(),
	}
	names, err := decodeServerNames(m.GetServerNames())
	if err != nil {
		return out, fmt.Errorf("filter_chain_match.%w", err)
	}
	out.Match.ServerNames = names
	switch {
	case len(m.GetDirectSourcePrefixRanges()) > 0:
		return out, fmt.Errorf("filter_chain_match.direct_source_prefix_ranges: not supported")
	case len(m.GetSourcePorts()) > 0:
		return out, fmt.Errorf("filter_chain_match.source_ports: not supported")
	case m.GetSourceType() != listenerpb.FilterChainMatch_ANY:
		return out, fmt.Errorf("filter_chain_match.source_type: not supported")
	case m.GetAddressSuffix() != "" || m.GetSuffixLen() != nil:
		return out, fmt.Errorf("filter_chain_match.address_suffix: not supported")
	}
	for i, r := range m.GetPrefixRanges() {
		if r.GetPrefixLen().GetValue() != 0 {
			return out, fmt.Errorf("filter_chain_match.prefix_ranges[%d]: only catch-all ranges (/0) are supported", i)
		}
	}
	for i, r := range m.GetSourcePrefixRanges() {
		if r.GetPrefixLen().GetValue() != 0 {
			return out, fmt.Errorf("filter_chain_match.source_prefix_ranges[%d]: only catch-all ranges (/0) are supported", i)
		}
	}
	if out.TLS, err = decodeTransportSocket(fc.GetTransportSocket()); err != nil { // decode_tls.go
		return out, err
	}
	// decode_mtls.go: the chain's PeerAuthentication, for explanations
	decodeChainMTLS(fc, &out)
	if fc.GetUseProxyProto().GetValue() { //nolint:staticcheck // SA1019: a config that sets it must still be rejected
		return out, fmt.Errorf("use_proxy_proto: not supported")
	}
	filters := fc.GetFilters()
	for i, f := range filters {
		last := i == len(filters)-1
		switch {
		case ignoredNetworkFilters[f.GetName()]:
			continue
		case f.GetName() == hcmFilterName || f.GetTypedConfig().GetTypeUrl() == hcmTypeURL:
			if !last {
				return out, fmt.Errorf("filters[%d]: %s must be the last filter", i, hcmFilterName)
			}
			h, err := decodeHCM(f.GetTypedConfig())
			if err != nil {
				return out, fmt.Errorf("filters[%d].typed_config.%w", i, err)
			}
			out.HTTP = h
		case isAuthNetworkFilter(f): // decode_authz.go
			if err := decodeAuthNetworkFilter(&out, f); err != nil {
				return out, fmt.Errorf("filters[%d].%w", i, err)
			}
		case f.GetName() == tcpProxyFilterName || f.GetTypedConfig().GetTypeUrl() == tcpProxyTypeURL:
			if !last {
				return out, fmt.Errorf("filters[%d]: %s must be the last filter", i, tcpProxyFilterName)
			}
			t, err := decodeTCPProxy(f.GetTypedConfig())
			if err != nil {
				return out, fmt.Errorf("filters[%d].typed_config.%w", i, err)
			}
			out.TCP = t
		default:
			return out, fmt.Errorf("filters[%d]: network filter %q is not supported", i, f.GetName())
		}
	}
	if out.HTTP == nil && out.TCP == nil {
		return out, fmt.Errorf("filters: the chain must end in %s or %s", hcmFilterName, tcpProxyFilterName)
	}
	return out, nil
}

func decodeHCM(a *anypb.Any) (*resource.HTTPManager, error) {
	var h hcmpb.HttpConnectionManager
	if a == nil {
		return nil, fmt.Errorf("required")
	}
	if err := a.UnmarshalTo(&h); err != nil {
		return nil, fmt.Errorf("%w", err)
	}
	if err := validate(&h); err != nil {
		return nil, err
	}
	out := &resource.HTTPManager{
		StatPrefix:        h.GetStatPrefix(),
		StreamIdleTimeout: durationOr(h.GetStreamIdleTimeout(), defaultStreamIdleTimeout),
		IdleTimeout:       durationOr(h.GetCommonHttpProtocolOptions().GetIdleTimeout(), defaultIdleTimeout),
		UseRemoteAddress:  h.GetUseRemoteAddress().GetValue(),
		ServerName:        h.GetServerName(),
		NormalizePath:     h.GetNormalizePath().GetValue(),
		MergeSlashes:      h.GetMergeSlashes(),

		MaxRequestHeadersKB: h.GetMaxRequestHeadersKb().GetValue(),
		MaxHeadersCount:     h.GetCommonHttpProtocolOptions().GetMaxHeadersCount().GetValue(),
		AcceptHTTP10:        h.GetHttpProtocolOptions().GetAcceptHttp_10(),
	}
	decodePathNormalization(out, &h) // decode_pathnorm.go
	switch r := h.GetRouteSpecifier().(type) {
	case *hcmpb.HttpConnectionManager_Rds:
		out.RDSName = r.Rds.GetRouteConfigName()
		if out.RDSName == "" {
			return nil, fmt.Errorf("rds.route_config_name: required")
		}
	case *hcmpb.HttpConnectionManager_RouteConfig:
		rc, err := DecodeRouteConfig(r.RouteConfig)
		if err != nil {
			return nil, fmt.Errorf("route_config.%w", err)
		}
		out.Routes = rc
	default:
		return nil, fmt.Errorf("route_specifier: %T is not supported", r)
	}
	router := false
	for i, f := range h.GetHttpFilters() {
		name, typ := f.GetName(), f.GetTypedConfig().GetTypeUrl()
		switch {
		case f.GetDisabled():
			continue
		case name == routerFilterName || typ == routerTypeURL:
			router = true
		case name == faultFilterName || typ == faultTypeURL:
			out.FaultFilter = true
		case name == corsFilterName || typ == corsTypeURL, ignoredHTTPFilters[name]:
		case isAuthHTTPFilter(f): // decode_authz.go
			if err := decodeAuthHTTPFilter(out, f); err != nil {
				return nil, fmt.Errorf("http_filters[%d].%w", i, err)
			}
		case f.GetIsOptional():
			// Envoy skips optional filters it does not know.
		default:
			return nil, fmt.Errorf("http_filters[%d]: http filter %q is not supported", i, name)
		}
	}
	if !router {
		return nil, fmt.Errorf("http_filters: %s is required", routerFilterName)
	}
	tr, err := decodeTracing(h.GetTracing()) // decode_tracing.go
	if err != nil {
		return nil, fmt.Errorf("tracing.%w", err)
	}
	out.Tracing = tr
	if err := decodeRequestIDExtension(out, h.GetRequestIdExtension()); err != nil { // decode_tracing.go
		return nil, fmt.Errorf("request_id_extension.%w", err)
	}
	if out.AccessLogs, err = decodeAccessLogs(h.GetAccessLog()); err != nil { // decode_accesslog.go
		return nil, fmt.Errorf("access_log%w", err)
	}
	if out.Stats, err = decodeStatsFilter(h.GetHttpFilters()); err != nil { // decode_stats.go
		return nil, err
	}
	return out, nil
}

func decodeTCPProxy(a *anypb.Any) (*resource.TCPProxy, error) {
	var t tcppb.TcpProxy
	if a == nil {
		return nil, fmt.Errorf("required")
	}
	if err := a.UnmarshalTo(&t); err != nil {
		return nil, fmt.Errorf("%w", err)
	}
	if err := validate(&t); err != nil {
		return nil, err
	}
	switch {
	case t.GetTunnelingConfig() != nil:
		return nil, fmt.Errorf("tunneling_config: not supported")
	case t.GetOnDemand() != nil:
		return nil, fmt.Errorf("on_demand: not supported")
	case t.GetMetadataMatch() != nil:
		return nil, fmt.Errorf("metadata_match: not supported")
	}
	out := &resource.TCPProxy{
		StatPrefix:  t.GetStatPrefix(),
		IdleTimeout: durationOr(t.GetIdleTimeout(), defaultIdleTimeout),
	}
	switch c := t.GetClusterSpecifier().(type) {
	case *tcppb.TcpProxy_Cluster:
		out.Cluster = c.Cluster
	case *tcppb.TcpProxy_WeightedClusters:
		for _, cw := range c.WeightedClusters.GetClusters() {
			if cw.GetMetadataMatch() != nil {
				return nil, fmt.Errorf("weighted_clusters: metadata_match is not supported")
			}
			out.WeightedClusters = append(out.WeightedClusters, resource.WeightedCluster{Name: cw.GetName(), Weight: cw.GetWeight()})
		}
	default:
		return nil, fmt.Errorf("cluster_specifier: %T is not supported", c)
	}
	var err error
	if out.AccessLogs, err = decodeAccessLogs(t.GetAccessLog()); err != nil { // decode_accesslog.go
		return nil, fmt.Errorf("access_log%w", err)
	}
	return out, nil
}
