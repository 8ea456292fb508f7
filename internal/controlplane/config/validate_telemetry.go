package config

import (
	"maps"
	"slices"

	telemetryv1alpha1 "istio.io/api/telemetry/v1alpha1"

	"github.com/lucid-mesh/lucid/internal/contract/logformat"
)

// validateTelemetry checks a telemetry.istio.io Telemetry with istiod's rules and
// messages (ValidateTelemetry). Lucid applies its tracing (match.mode, providers,
// randomSamplingPercentage, literal/header/environment/formatter customTags,
// useRequestIdForTraceSampling,
// disableSpanReporting), its accessLogging (match.mode, providers, filter, disabled) and
// its metrics overrides of the HTTP metrics (disabled, tagOverrides);
// what it does not apply yet is a warning naming the field.
func validateTelemetry(o *Object, v *validator) {
	t := o.Spec.(*telemetryv1alpha1.Telemetry)
	v.policyTargets(t.GetSelector(), t.GetTargetRef(), t.GetTargetRefs())
	if len(t.GetTracing()) > 1 {
		v.warnf("spec.tracing", "multiple tracing is not currently supported")
	}
	for i, tr := range t.GetTracing() {
		p := idx("spec.tracing", i)
		if tr == nil {
			continue
		}
		if len(tr.GetProviders()) > 1 {
			v.warnf(p+".providers", "multiple providers is not currently supported")
		}
		telemetryProviders(v, p, tr.GetProviders())
		if s := tr.GetRandomSamplingPercentage().GetValue(); s < 0 || s > 100 {
			v.errorf(p+".randomSamplingPercentage", "randomSamplingPercentage must be in range [0.0, 100.0], got %v", s)
		}
		for _, name := range slices.Sorted(maps.Keys(tr.GetCustomTags())) {
			ct := tr.GetCustomTags()[name]
			tp := key(p+".customTags", name)
			switch {
			case name == "":
				v.errorf(tp, "tag name may not be empty")
			case ct == nil:
				v.errorf(tp, "tag '%s' may not have a nil value", name)
			case ct.GetLiteral() != nil && ct.GetLiteral().GetValue() == "":
				v.errorf(tp+".literal.value", "literal tag value may not be empty")
			case ct.GetHeader() != nil && ct.GetHeader().GetName() == "":
				v.errorf(tp+".header.name", "header tag name may not be empty")
			case ct.GetEnvironment() != nil && ct.GetEnvironment().GetName() == "":
				v.errorf(tp+".environment.name", "environment tag name may not be empty")
			case ct.GetFormatter() != nil:
				if _, err := logformat.Parse(ct.GetFormatter().GetValue()); err != nil {
					v.lucidWarnf(tp+".formatter.value", "%v; the tag is left out", err)
				}
			}
		}
		for _, f := range []struct {
			set  bool
			name string
		}{{tr.GetEnableIstioTags() != nil, "enableIstioTags"},
			{tr.GetDisableContextPropagation() != nil, "disableContextPropagation"}} {
			if f.set {
				v.lucidWarnf(p+"."+f.name, "not yet applied by Lucid")
			}
		}
	}
	for i, l := range t.GetAccessLogging() {
		validateAccessLogging(v, idx("spec.accessLogging", i), l) // validate_telemetry_accesslog.go
	}
	for i, m := range t.GetMetrics() {
		validateMetrics(v, idx("spec.metrics", i), m) // validate_telemetry_metrics.go
	}
	if len(t.GetTargetRefs()) > 0 || t.GetTargetRef() != nil {
		v.lucidWarnf("spec.targetRefs", "not yet applied by Lucid (selector, namespace and root namespace scopes are)")
	}
}

// telemetryProviders is istiod's validateTelemetryProviders: every provider named.
func telemetryProviders(v *validator, path string, prs []*telemetryv1alpha1.ProviderRef) {
	for j, pr := range prs {
		if pr.GetName() == "" {
			v.errorf(idx(path+".providers", j)+".name", "providers.name may not be empty")
		}
	}
}
