package resource

import (
	"net/netip"
	"time"
)

// DiscoveryType is config.cluster.v3.Cluster.DiscoveryType.
type DiscoveryType int

// The discovery types Lucid supports, named after Envoy's.
const (
	EDS         DiscoveryType = iota // endpoints arrive as a ClusterLoadAssignment named ServiceName
	Static                           // endpoints are in LoadAssignment
	OriginalDst                      // PassthroughCluster: the endpoint is the request's destination
	StrictDNS                        // endpoints are hostnames resolved by the proxy
	LogicalDNS
)

// LBPolicy is config.cluster.v3.Cluster.LbPolicy.
type LBPolicy int

// The load balancing policies, named after Envoy's.
const (
	LeastRequest LBPolicy = iota // Istio's default (power of two choices)
	RoundRobin
	Random
	RingHash
	Maglev
)

// Protocol is the upstream HTTP protocol, from typed_extension_protocol_options
// ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]: explicit_http_config
// (http_protocol_options → HTTP1, http2_protocol_options → HTTP2) or use_downstream_protocol_config
// (→ Downstream). Without the extension, HTTP1.
type Protocol int

// The upstream protocols.
const (
	HTTP1 Protocol = iota
	HTTP2
	Downstream
)

// Cluster is a config.cluster.v3.Cluster. Istio names: "outbound|9080|v1|reviews.default.svc.cluster.local",
// "inbound|9080||", "PassthroughCluster", "BlackHoleCluster", "InboundPassthroughCluster".
type Cluster struct {
	Name           string        // name
	Type           DiscoveryType // type
	ServiceName    string        // eds_cluster_config.service_name (defaults to Name)
	ConnectTimeout time.Duration // connect_timeout (unset → 5 s; Istio sets 10 s)
	LBPolicy       LBPolicy      // lb_policy
	Protocol       Protocol
	// LoadAssignment is load_assignment (STATIC, STRICT_DNS, LOGICAL_DNS clusters).
	LoadAssignment *Endpoints

	// circuit_breakers.thresholds[priority DEFAULT]; 0 means Envoy's default (1024, 1024,
	// 1024, 3). Istio sets them all to 2^32-1.
	MaxConnections     uint32
	MaxPendingRequests uint32
	MaxRequests        uint32
	MaxRetries         uint32

	// circuit_breakers.thresholds[priority DEFAULT].retry_budget; nil when unset (then
	// MaxRetries bounds concurrent retries).
	RetryBudget *RetryBudget

	// HttpProtocolOptions.common_http_protocol_options
	IdleTimeout              time.Duration // idle_timeout (unset → 1 h)
	MaxRequestsPerConnection uint32        // max_requests_per_connection (0 = unlimited)
	MaxConnectionDuration    time.Duration // max_connection_duration (0 = none)
	// HttpProtocolOptions http2_protocol_options.max_concurrent_streams (0 = unset).
	MaxConcurrentStreams uint32

	// OutlierDetection is outlier_detection; nil when unset (no outlier detection).
	OutlierDetection *OutlierDetection
	// HealthyPanicThreshold is common_lb_config.healthy_panic_threshold in percent;
	// negative when unset (Envoy's default, 50). Istio sets it (minHealthPercent, default 0:
	// panic mode off) whenever a DestinationRule sets outlierDetection.
	HealthyPanicThreshold float64
	// RingHashMinSize is ring_hash_lb_config.minimum_ring_size (unset → 1024);
	// MaglevTableSize is maglev_lb_config.table_size (unset → 65537).
	RingHashMinSize, MaglevTableSize uint64

	// OriginalDst: original_dst_lb_config.use_http_header (x-envoy-original-dst-host).
	UseHTTPHeader bool
	// BindAddress is upstream_bind_config.source_address: the local address of every
	// upstream connection (Istio's InboundPassthroughCluster: 127.0.0.6, which the capture
	// rules never redirect); invalid when unset.
	BindAddress netip.Addr

	// upstream_connection_options.tcp_keepalive; nil when unset (Lucid's default applies).
	TCPKeepalive *TCPKeepalive
	// http2_protocol_options.connection_keepalive; nil when unset (Lucid's default applies).
	HTTP2Keepalive *HTTP2Keepalive

	// AltStatName is alt_stat_name.
	AltStatName string

	// TLS is transport_socket (nil: raw_buffer) and TLSMatches transport_socket_matches:
	// how connections to an endpoint are made (TransportFor, tls.go).
	TLS        *UpstreamTLS
	TLSMatches []TransportSocketMatch

	// From metadata.filter_metadata["istio"] and ["lucid"]; used for diagnostics only.
	Info ClusterInfo
}

// RetryBudget is config.cluster.v3.CircuitBreakers.Thresholds.RetryBudget: active retries
// may be at most BudgetPercent of the active and pending requests, but never fewer than
// MinRetryConcurrency.
type RetryBudget struct {
	BudgetPercent       float64 // budget_percent (unset → 20)
	MinRetryConcurrency uint32  // min_retry_concurrency (unset → 3)
}

// OutlierDetection is config.cluster.v3.OutlierDetection, with Envoy's defaults filled in.
// Enforcing values are percentages (0..100): the chance that a detected outlier is ejected.
type OutlierDetection struct {
	Consecutive5xx                         uint32        // consecutive_5xx (unset → 5)
	EnforcingConsecutive5xx                uint32        // enforcing_consecutive_5xx (unset → 100)
	ConsecutiveGatewayFailure              uint32        // consecutive_gateway_failure (unset → 5)
	EnforcingConsecutiveGatewayFailure     uint32        // enforcing_consecutive_gateway_failure (unset → 0)
	ConsecutiveLocalOriginFailure          uint32        // consecutive_local_origin_failure (unset → 5)
	EnforcingConsecutiveLocalOriginFailure uint32        // enforcing_consecutive_local_origin_failure (unset → 100)
	SplitExternalLocalOriginErrors         bool          // split_external_local_origin_errors
	Interval                               time.Duration // interval (unset → 10 s)
	BaseEjectionTime                       time.Duration // base_ejection_time (unset → 30 s)
	MaxEjectionTime                        time.Duration // max_ejection_time (unset → 300 s)
	MaxEjectionPercent                     uint32        // max_ejection_percent (unset → 10)
}

// ClusterInfo is what the control plane says about where a cluster came from.
// metadata.filter_metadata["istio"]: {"services": [{"host","name","namespace"}],
// "config": "/apis/networking.istio.io/v1/namespaces/<ns>/destination-rule/<name>", "subset": "v1"}.
// metadata.filter_metadata["lucid"]: {"selector": {"version": "v1"}, "service_cluster":
// "outbound|9080||reviews.default.svc.cluster.local"}: the subset's label selector and the
// cluster with all of the service's endpoints, so an empty subset can be explained.
type ClusterInfo struct {
	ServiceHost      string            // services[0].host
	ServiceName      string            // services[0].name
	ServiceNamespace string            // services[0].namespace
	DestinationRule  string            // config
	Subset           string            // subset
	Selector         map[string]string // lucid.selector
	ServiceCluster   string            // lucid.service_cluster
	// lucid.tls: the TLS mode the cluster originates (DISABLE, SIMPLE, MUTUAL,
	// ISTIO_MUTUAL; "auto" for auto mutual TLS) and what decided it, for explanations.
	TLSMode   string `json:",omitempty"`
	TLSSource string `json:",omitempty"`
}

// HealthStatus is config.core.v3.HealthStatus.
type HealthStatus int

// The health statuses, in Envoy's enum order (String gives Envoy's names).
const (
	HealthUnknown HealthStatus = iota
	Healthy
	Unhealthy
	Draining
	Timeout
	Degraded
)

func (h HealthStatus) String() string {
	return [...]string{"UNKNOWN", "HEALTHY", "UNHEALTHY", "DRAINING", "TIMEOUT", "DEGRADED"}[h]
}

// Endpoints is a config.endpoint.v3.ClusterLoadAssignment, flattened: locality and
// priority are kept on each endpoint.
type Endpoints struct {
	ClusterName string     // cluster_name
	Endpoints   []Endpoint // endpoints[*].lb_endpoints
}

// Endpoint is one lb_endpoint.
type Endpoint struct {
	Address  netip.AddrPort // endpoint.address.socket_address (address, port_value)
	Hostname string         // endpoint.address.socket_address.address when it is not an IP (DNS clusters)
	Port     uint32         // port_value (same as Address.Port() for IPs)
	Health   HealthStatus   // health_status (UNKNOWN counts as healthy, as in Envoy)
	Weight   uint32         // load_balancing_weight (unset → 1)
	Locality string         // locality "region/zone/subzone"
	Priority uint32         // priority

	// metadata.filter_metadata["istio"]["workload"]: "name;namespace;canonical-name;canonical-revision;cluster".
	Workload string
	// metadata.filter_metadata["lucid"]["labels"]: the workload's labels.
	Labels map[string]string

	// metadata.filter_metadata["envoy.transport_socket_match"]: what the cluster's
	// transport_socket_matches match (Istio: tlsMode "istio" for a workload with a sidecar).
	TransportMatch map[string]string `json:",omitempty"`
	// metadata.filter_metadata["lucid"]["mtls"]: the endpoint's PeerAuthentication mode
	// for this port (STRICT, PERMISSIVE, DISABLE) and the policy that decided it
	// ("istio-system/default"; "" for the mesh default), for explanations.
	MTLSMode           string `json:",omitempty"`
	PeerAuthentication string `json:",omitempty"`
}

// Usable says whether Envoy would route to the endpoint (UNKNOWN, HEALTHY and DEGRADED do).
func (e *Endpoint) Usable() bool {
	return e.Health == HealthUnknown || e.Health == Healthy || e.Health == Degraded
}
