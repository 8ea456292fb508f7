package resource

import "github.com/lucid-mesh/lucid/internal/contract/celattr"

// StatsOverrides are a listener's changes to Istio's standard metrics, from the
// istio.stats HTTP filter (stats.PluginConfig's metrics, as istiod writes a Telemetry
// resource's metrics overrides). HTTPManager.Stats nil: every metric with every label.
type StatsOverrides struct {
	Metrics []MetricOverride // applied in order; a later one wins
}

// MetricOverride changes one metric, or every metric when Name is "".
type MetricOverride struct {
	Name   string   // Istio's short name: requests_total, request_duration_milliseconds, request_bytes, response_bytes
	Drop   bool     // the metric is not reported
	Remove []string // labels left out of the metric's series
	Upsert []TagValue
}

// TagValue sets a standard label from a CEL expression over the request's attributes.
type TagValue struct {
	Tag   string
	Value *celattr.Expr
}
