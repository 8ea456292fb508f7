package model

import (
	"fmt"
	"slices"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	telemetryv1alpha1 "istio.io/api/telemetry/v1alpha1"

	"github.com/lucid-mesh/lucid/internal/contract"
	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// PrometheusProvider is the metrics provider every Istio mesh has without declaring it.
const PrometheusProvider = "prometheus"

// MetricOverride is what the Telemetry API changes of one standard HTTP metric on one
// side of a proxy: Name is Istio's short name (contract.IstioHTTPMetrics).
type MetricOverride struct {
	Name     string
	Disabled bool
	Remove   []string          // labels removed, sorted
	Upsert   map[string]string // label → CEL value expression
}

// telemetryMetrics is the metrics of one Telemetry resource.
type telemetryMetrics struct {
	namespace string
	selector  map[string]string
	entries   []*telemetryv1alpha1.Metrics
}

// metricsTelemetry is the Telemetry resources' metrics.
type metricsTelemetry struct {
	telemetry []*telemetryMetrics
	rootNS    string
	defaults  []string // meshConfig.defaultProviders.metrics; empty: prometheus
}

// MetricsFor returns the overrides of Istio's standard HTTP metrics for proxy p on its
// mode side, merged as istiod merges them: the Telemetry resources of the root
// namespace, p's namespace and the one selecting p (oldest of each level), each
// override for the metrics it matches (ALL_METRICS: every one) and the sides its
// match.mode names, a later one setting disabled and each label's operation anew. Only
// entries for the prometheus provider count. nil: the metrics as they are.
func (m *Mesh) MetricsFor(p *Proxy, mode TraceMode) []MetricOverride {
	mt := m.metrics
	if mt == nil {
		return nil
	}
	type state struct {
		disabled bool
		tags     map[string]*telemetryv1alpha1.MetricsOverrides_TagOverride
		set      bool
	}
	states := make([]state, len(contract.IstioHTTPMetrics))
	for _, tm := range telemetryLevels(mt.telemetry, mt.rootNS, p, func(t *telemetryMetrics) (string, map[string]string) { return t.namespace, t.selector }) {
		for _, e := range tm.entries {
			if !metricsForPrometheus(e, mt.defaults) {
				continue
			}
			for _, o := range e.GetOverrides() {
				if !mode.matches(o.GetMatch().GetMode()) {
					continue
				}
				for _, i := range metricIndexes(o.GetMatch()) {
					s := &states[i]
					s.set = true
					if d := o.GetDisabled(); d != nil {
						s.disabled = d.GetValue()
					}
					for tag, to := range o.GetTagOverrides() {
						if s.tags == nil {
							s.tags = map[string]*telemetryv1alpha1.MetricsOverrides_TagOverride{}
						}
						s.tags[tag] = to
					}
				}
			}
		}
	}
	var out []MetricOverride
	for i, s := range states {
		if !s.set {
			continue
		}
		mo := MetricOverride{Name: contract.IstioHTTPMetrics[i], Disabled: s.disabled}
		for tag, to := range s.tags {
			if !slices.Contains(contract.IstioLabels, tag) {
				continue // adding a label is not applied (config warned)
			}
			if to.GetOperation() == telemetryv1alpha1.MetricsOverrides_TagOverride_REMOVE {
				mo.Remove = append(mo.Remove, tag)
			} else if to.GetValue() != "" {
				if mo.Upsert == nil {
					mo.Upsert = map[string]string{}
				}
				mo.Upsert[tag] = to.GetValue()
			}
		}
		slices.Sort(mo.Remove)
		if mo.Disabled || len(mo.Remove) > 0 || len(mo.Upsert) > 0 {
			out = append(out, mo)
		}
	}
	return out
}

// metricsForPrometheus reports whether a metrics entry is for the prometheus provider
// (named, or by default).
func metricsForPrometheus(e *telemetryv1alpha1.Metrics, defaults []string) bool {
	names := defaults
	if prs := e.GetProviders(); len(prs) > 0 {
		names = nil
		for _, pr := range prs {
			names = append(names, pr.GetName())
		}
	}
	return len(names) == 0 || slices.Contains(names, PrometheusProvider)
}

// metricIndexes are the positions in contract.IstioHTTPMetrics a selector matches (none
// for TCP, gRPC and custom metrics, which are not overridden).
func metricIndexes(sel *telemetryv1alpha1.MetricSelector) []int {
	if sel.GetCustomMetric() != "" {
		return nil
	}
	switch m := sel.GetMetric(); m {
	case telemetryv1alpha1.MetricSelector_ALL_METRICS:
		return []int{0, 1, 2, 3}
	case telemetryv1alpha1.MetricSelector_REQUEST_COUNT, telemetryv1alpha1.MetricSelector_REQUEST_DURATION,
		telemetryv1alpha1.MetricSelector_REQUEST_SIZE, telemetryv1alpha1.MetricSelector_RESPONSE_SIZE:
		return []int{int(m) - 1}
	}
	return nil
}

// checkMetrics collects the Telemetry resources' metrics; a provider other than
// prometheus is a warning naming the field. Telemetry selectors split proxy classes.
func (b *builder) checkMetrics(objs []*config.Object, mesh *meshv1alpha1.MeshConfig) {
	mt := &metricsTelemetry{rootNS: b.m.rootNamespace, defaults: mesh.GetDefaultProviders().GetMetrics()}
	for _, o := range objs {
		spec, ok := o.Spec.(*telemetryv1alpha1.Telemetry)
		if !ok || len(spec.GetMetrics()) == 0 || spec.GetTargetRef() != nil || len(spec.GetTargetRefs()) > 0 {
			continue
		}
		tm := &telemetryMetrics{namespace: o.Namespace, entries: spec.GetMetrics()}
		if sel := spec.GetSelector().GetMatchLabels(); len(sel) > 0 {
			tm.selector = sel
			b.addSelector(sel)
		}
		for i, e := range spec.GetMetrics() {
			for j, pr := range e.GetProviders() {
				if pr.GetName() != PrometheusProvider {
					b.warn(o, fmt.Sprintf("spec.metrics[%d].providers[%d].name", i, j),
						"provider %q is not a metrics provider Lucid runs (prometheus is); its overrides change nothing", pr.GetName())
				}
			}
		}
		mt.telemetry = append(mt.telemetry, tm)
	}
	if len(mt.telemetry) > 0 {
		b.m.metrics = mt
	}
}
