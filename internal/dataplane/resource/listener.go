package resource

import (
	"net/netip"
	"time"
)

// Direction is listener.traffic_direction.
type Direction int

// The traffic directions (UNSPECIFIED, INBOUND, OUTBOUND).
const (
	DirectionUnspecified Direction = iota
	Inbound
	Outbound
)

// Listener is a config.listener.v3.Listener.
//
// How the sidecar runs listeners in local mode (no iptables):
//   - A listener with BindToPort binds Address. Istio's virtualOutbound (UseOriginalDst, on
//     15001 of the workload's address) is run as an explicit HTTP proxy: the destination
//     comes from the absolute URI or Host/:authority instead of SO_ORIGINAL_DST, and the
//     request is handed to the listener whose Address port equals the destination port and
//     BindToPort is false (Istio's 0.0.0.0_<port>), exactly as original_dst would hand it
//     over; with no such listener the virtualOutbound's DefaultChain applies (passthrough).
//   - virtualInbound (Direction Inbound, UseOriginalDst) has one filter chain per service
//     port, matched by destination_port; the sidecar binds <workload address>:<port> for each
//     such port and runs that chain.
type Listener struct {
	Name           string         // name
	Address        netip.AddrPort // address.socket_address (address, port_value)
	BindToPort     bool           // bind_to_port (default true)
	UseOriginalDst bool           // use_original_dst
	Direction      Direction      // traffic_direction
	FilterChains   []FilterChain  // filter_chains
	DefaultChain   *FilterChain   // default_filter_chain
	// TLSInspector: listener_filters has envoy.filters.listener.tls_inspector, so a
	// connection's SNI, ALPN and transport protocol ("tls" or "raw_buffer") are read from
	// its ClientHello before the filter chain is chosen.
	TLSInspector bool
	// OriginalSrcMark is the mark of listener_filters' envoy.filters.listener.original_src
	// (Istio's virtualInbound under TPROXY); 0 when absent or unset. Under TPROXY the
	// sidecar dials the app from the client's address whether or not the filter came.
	OriginalSrcMark uint32 `json:",omitempty"`
}

// FilterChain is a listener.v3.FilterChain whose network filters end in either an
// http_connection_manager (HTTP) or a tcp_proxy (TCP); exactly one is set.
type FilterChain struct {
	Name  string           // name
	Match FilterChainMatch // filter_chain_match
	// TLS is transport_socket "envoy.transport_sockets.tls" (DownstreamTlsContext): the
	// chain terminates TLS; nil is raw_buffer (plaintext, or TLS passed through).
	TLS  *DownstreamTLS
	HTTP *HTTPManager
	TCP  *TCPProxy
	Auth []AuthFilter // network RBAC and ext_authz filters before tcp_proxy/HCM (authz.go)
	// metadata.filter_metadata["lucid"]: the PeerAuthentication mode of an inbound chain
	// and the policy that set it, for explanations (a refused plaintext connection).
	MTLSMode           string `json:",omitempty"`
	PeerAuthentication string `json:",omitempty"`
}

// FilterChainMatch is listener.v3.FilterChainMatch; zero fields match anything.
type FilterChainMatch struct {
	DestinationPort uint32 // destination_port
	// ServerNames is server_names: the SNI of the ClientHello, exact ("api.example.com")
	// or a wildcard ("*.example.com", which matches any name ending in ".example.com").
	ServerNames          []string
	TransportProtocol    string   // transport_protocol ("raw_buffer", "tls")
	ApplicationProtocols []string // application_protocols
}

// HTTPManager is envoy.filters.network.http_connection_manager (HttpConnectionManager).
type HTTPManager struct {
	StatPrefix string // stat_prefix
	// Exactly one of RDSName (rds.route_config_name) and Routes (route_config) is set.
	RDSName string
	Routes  *RouteConfig

	// stream_idle_timeout; 0 means disabled (Istio sets 0s). Unset in the proto → 5 min.
	StreamIdleTimeout time.Duration
	// common_http_protocol_options.idle_timeout for downstream connections; unset → 1 h.
	IdleTimeout time.Duration
	// use_remote_address: whether this hop appends the peer address to x-forwarded-for.
	UseRemoteAddress bool
	// server_name (response "server" header on local replies); Istio uses "istio-envoy".
	ServerName string
	// normalize_path, merge_slashes (Istio sets normalize_path true).
	NormalizePath bool
	MergeSlashes  bool
	// path_with_escaped_slashes_action and xff_num_trusted_hops (pathnorm.go).
	EscapedSlashes    EscapedSlashesAction
	XFFNumTrustedHops uint32
	// Whether envoy.filters.http.fault is in http_filters (route-level faults need it).
	FaultFilter bool
	// Request limits: max_request_headers_kb, common_http_protocol_options.max_headers_count
	// (0: unset, the proxy's default: Envoy's 60 KiB and 100) and
	// http_protocol_options.accept_http_10.
	MaxRequestHeadersKB uint32
	MaxHeadersCount     uint32
	AcceptHTTP10        bool
	Auth                []AuthFilter // RBAC, jwt_authn and ext_authz http_filters, in order (authz.go)
	Tracing             *Tracing     // tracing; nil: no spans (tracing.go)

	// The Telemetry API: access_log (nil: the proxy's own access log; accesslog.go) and
	// the istio.stats metric overrides (nil: none; stats.go).
	AccessLogs []AccessLog
	Stats      *StatsOverrides
}

// TCPProxy is envoy.filters.network.tcp_proxy.
type TCPProxy struct {
	StatPrefix       string            // stat_prefix
	Cluster          string            // cluster
	WeightedClusters []WeightedCluster // weighted_clusters.clusters
	IdleTimeout      time.Duration     // idle_timeout; unset → 1 h, 0 disables
	// AccessLogs are the chain's access_log, one line per connection (the Telemetry API's
	// accessLogging, as on an HTTPManager; accesslog.go); nil: the proxy's own access log.
	AccessLogs []AccessLog
}
