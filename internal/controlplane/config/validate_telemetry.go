package config

import (
	"maps"
	"slices"

	telemetryv1alpha1 "istio.io/api/telemetry/v1alpha1"
)

// validateTelemetry checks a telemetry.istio.io Telemetry as istiod does. Lucid applies
// its tracing (providers, randomSamplingPercentage, customTags); what it does not apply
// yet is a warning naming the field.
func validateTelemetry(o *Object, v *validator) {
	t := o.Spec.(*telemetryv1alpha1.Telemetry)
	v.policyTargets(t.GetSelector(), t.GetTargetRef(), t.GetTargetRefs())
	if len(t.GetTracing()) > 1 {
		v.errorf("spec.tracing", "multiple tracing is not currently supported")
	}
	for i, tr := range t.GetTracing() {
		p := idx("spec.tracing", i)
		if tr == nil {
			continue
		}
		if len(tr.GetProviders()) > 1 {
			v.errorf(p+".providers", "multiple providers is not currently supported")
		}
		for j, pr := range tr.GetProviders() {
			if pr.GetName() == "" {
				v.errorf(idx(p+".providers", j)+".name", "must not be empty")
			}
		}
		if s := tr.GetRandomSamplingPercentage(); s != nil && (s.GetValue() < 0 || s.GetValue() > 100) {
			v.errorf(p+".randomSamplingPercentage", "must be in range [0.0, 100.0], got %v", s.GetValue())
		}
		for _, name := range slices.Sorted(maps.Keys(tr.GetCustomTags())) {
			ct := tr.GetCustomTags()[name]
			tp := key(p+".customTags", name)
			switch {
			case ct.GetLiteral() != nil, ct.GetEnvironment() != nil, ct.GetHeader() != nil:
			case ct.GetFormatter() != nil:
				v.lucidWarnf(tp+".formatter", "not yet applied by Lucid (literal, environment and header tags are)")
			default:
				v.errorf(tp, "must have a literal, environment, header or formatter")
			}
		}
		if tr.GetMatch() != nil && tr.GetMatch().GetMode() != telemetryv1alpha1.WorkloadMode_CLIENT_AND_SERVER {
			v.lucidWarnf(p+".match.mode", "not yet applied by Lucid: the tracing applies to client and server spans alike")
		}
		if tr.GetDisableSpanReporting() != nil {
			v.lucidWarnf(p+".disableSpanReporting", "not yet applied by Lucid")
		}
	}
	if len(t.GetAccessLogging()) > 0 {
		v.lucidWarnf("spec.accessLogging", "not yet applied by Lucid (the proxies' --access-log flags decide)")
	}
	if len(t.GetMetrics()) > 0 {
		v.lucidWarnf("spec.metrics", "not yet applied by Lucid (every standard metric is reported with every label)")
	}
}
