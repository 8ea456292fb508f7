package resource

import "github.com/lucid-mesh/lucid/internal/contract/logformat"

// Tracing is an HTTP connection manager's tracing block (HttpConnectionManager.tracing):
// the provider spans go to and how requests are sampled. A nil *Tracing on an
// HTTPManager means the listener makes no spans.
type Tracing struct {
	Provider TracingProvider
	// Sampling percentages 0–100: random_sampling, client_sampling, overall_sampling
	// (unset in the proto: Envoy's 100 each; Istio sets random_sampling from
	// meshConfig.defaultConfig.tracing.sampling).
	RandomSampling, ClientSampling, OverallSampling float64
	MaxPathTagLength                                int // max_path_tag_length; 0: Envoy's 256
	CustomTags                                      []TracingTag
	// IgnoreRequestID is the connection manager's request_id_extension with
	// use_request_id_for_trace_sampling false (Istio's useRequestIdForTraceSampling:
	// false): every request is traced, the decision neither read from nor packed into
	// x-request-id (a parent's sampled flag is still followed).
	IgnoreRequestID bool
}

// TracingProvider says where spans go: envoy.tracers.opentelemetry (OTLP over gRPC, or
// over HTTP when HTTPPath is set) or envoy.tracers.zipkin (Zipkin v2 JSON), sent to an
// endpoint of Cluster.
type TracingProvider struct {
	Kind        string // "opentelemetry" or "zipkin"
	Cluster     string // grpc_service.envoy_grpc.cluster_name, http_service.http_uri.cluster, collector_cluster
	Authority   string // grpc_service.envoy_grpc.authority, or the http_uri's / collector_hostname's host
	HTTPPath    string // OTLP/HTTP: the http_uri's path ("/v1/traces"); Zipkin: collector_endpoint
	ServiceName string // OpenTelemetryConfig.service_name
}

// TracingTag is one custom_tags entry: a literal, a request header or an environment
// variable (with a default), or a value formatted from the finished request (Envoy's
// custom_tags value, Istio's formatter tag: the access log's command operators).
type TracingTag struct {
	Name    string
	Literal string
	Header  string
	Env     string
	Default string
	Format  []logformat.Part
}
