package config

import (
	"maps"
	"slices"

	telemetryv1alpha1 "istio.io/api/telemetry/v1alpha1"

	"github.com/lucid-mesh/lucid/internal/contract"
	"github.com/lucid-mesh/lucid/internal/contract/celattr"
)

// validateMetrics checks one spec.metrics entry with istiod's rules (a value only for
// UPSERT, and required there), its tag values compiled as CEL over Envoy's attributes;
// what Lucid does not apply (TCP, gRPC and custom metrics, new labels, the reporting
// interval) is a warning naming the field.
func validateMetrics(v *validator, path string, m *telemetryv1alpha1.Metrics) {
	telemetryProviders(v, path, m.GetProviders())
	if m.GetReportingInterval() != nil {
		v.lucidWarnf(path+".reportingInterval", "not yet applied by Lucid (metrics are served as they change)")
	}
	for j, o := range m.GetOverrides() {
		op := idx(path+".overrides", j)
		switch sel := o.GetMatch(); {
		case sel.GetCustomMetric() != "":
			v.lucidWarnf(op+".match.customMetric", "not yet applied by Lucid (the standard HTTP metrics can be overridden)")
		case sel.GetMetric() >= telemetryv1alpha1.MetricSelector_TCP_OPENED_CONNECTIONS:
			v.lucidWarnf(op+".match.metric", "%s is not yet overridden by Lucid (the standard HTTP metrics are)", sel.GetMetric())
		}
		for _, tag := range slices.Sorted(maps.Keys(o.GetTagOverrides())) {
			to := o.GetTagOverrides()[tag]
			tp := key(op+".tagOverrides", tag)
			switch {
			case to.GetOperation() == telemetryv1alpha1.MetricsOverrides_TagOverride_REMOVE && to.GetValue() != "":
				v.errorf(tp+".value", "value can only be set when the operation is UPSERT")
			case to.GetOperation() == telemetryv1alpha1.MetricsOverrides_TagOverride_UPSERT && to.GetValue() == "":
				v.errorf(tp+".value", "must be set when the operation is UPSERT")
			case to.GetOperation() == telemetryv1alpha1.MetricsOverrides_TagOverride_UPSERT:
				if _, err := celattr.CompileValue(to.GetValue()); err != nil {
					celError(v, tp+".value", err) // validate_telemetry_accesslog.go
				} else if !slices.Contains(contract.IstioLabels, tag) {
					v.lucidWarnf(tp, "adding a label is not yet applied by Lucid (Istio's standard labels can be set and removed)")
				}
			}
		}
	}
}
