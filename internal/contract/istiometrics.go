package contract

// IstioLabels are the labels of Istio's standard HTTP metrics, in Istio's order: the data
// plane reports them (internal/dataplane/stats) and the control plane checks the
// Telemetry API's tagOverrides against them.
var IstioLabels = []string{
	"reporter",
	"source_workload", "source_canonical_service", "source_canonical_revision",
	"source_workload_namespace", "source_principal", "source_app", "source_version", "source_cluster",
	"destination_workload", "destination_workload_namespace", "destination_principal",
	"destination_app", "destination_version", "destination_service",
	"destination_canonical_service", "destination_canonical_revision",
	"destination_service_name", "destination_service_namespace", "destination_cluster",
	"request_protocol", "response_code", "grpc_response_status", "response_flags",
	"connection_security_policy",
}

// IstioHTTPMetrics are the standard HTTP metrics by the short names Istio's stats filter
// configuration (stats.PluginConfig) uses, in the order of the Telemetry API's
// MetricSelector (REQUEST_COUNT, REQUEST_DURATION, REQUEST_SIZE, RESPONSE_SIZE).
var IstioHTTPMetrics = []string{"requests_total", "request_duration_milliseconds", "request_bytes", "response_bytes"}
