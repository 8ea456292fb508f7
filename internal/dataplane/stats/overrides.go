package stats

import (
	"net/http"
	"slices"
	"sync"

	"github.com/google/cel-go/interpreter"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lucid-mesh/lucid/internal/contract"
	"github.com/lucid-mesh/lucid/internal/dataplane/accesslog"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// The standard HTTP metrics by Istio's short name (stats.PluginConfig metric names),
// in the order overrideCache keeps them.
var httpMetricNames = contract.IstioHTTPMetrics

// HTTPMetric reports whether name is one of the standard HTTP metrics' short names.
func HTTPMetric(name string) bool { return slices.Contains(httpMetricNames, name) }

// LabelIndex is the position of a standard label in LabelNames; -1 when it is not one.
func LabelIndex(name string) int { return slices.Index(LabelNames, name) }

// overrideKey is one metric's series under overrides: the labels it leaves out (bit i
// for LabelNames[i]) and the values of the others (a left-out label's value is "").
type overrideKey struct {
	metric  int
	removed uint32
	labels  labelKey
}

// vecKey is one metric with a label set of its own: the standard labels less removed.
type vecKey struct {
	metric  int
	removed uint32
}

// overrideCache holds the series recorded under overrides, one metric at a time (a
// dropped metric must not appear, so the four are not created together). A series
// without a removed label is a child of the registered vectors; one with removed labels
// belongs to a vector of its own label set (vecs), which the registry gathers through
// the cache as an unchecked collector: Istio's exposition has, in one family, series
// with the labels each proxy side reports.
type overrideCache struct {
	mu   sync.RWMutex // guards m and vecs
	m    map[overrideKey]prometheus.Metric
	vecs map[vecKey]prometheus.Collector
}

var _ prometheus.Collector = (*overrideCache)(nil)

// Describe sends nothing: the label sets are known only as overrides arrive, so the
// registry checks these series at each scrape instead (an unchecked collector).
func (c *overrideCache) Describe(chan<- *prometheus.Desc) {}

// Collect sends the series of the vectors with removed labels.
func (c *overrideCache) Collect(ch chan<- prometheus.Metric) {
	c.mu.RLock()
	vecs := make([]prometheus.Collector, 0, len(c.vecs))
	for _, v := range c.vecs {
		vecs = append(vecs, v)
	}
	c.mu.RUnlock()
	for _, v := range vecs {
		v.Collect(ch)
	}
}

// RecordWith counts one finished request as its listener's overrides say (the Telemetry
// API's metrics: a metric dropped, labels left out or set from an expression over the
// request, h its downstream headers). Without overrides it is Record. Once a series
// exists, recording under removals allocates nothing (BenchmarkRecordWithRemove).
func (s *Stats) RecordWith(info *streaminfo.Info, ov *resource.StatsOverrides, h http.Header) {
	if ov == nil {
		s.Record(info)
		return
	}
	var base labelKey
	s.fill(&base, info)
	var act interpreter.Activation
	for i, name := range httpMetricNames {
		k, drop, removed := base, false, uint32(0)
		for j := range ov.Metrics {
			mo := &ov.Metrics[j]
			if mo.Name != "" && mo.Name != name {
				continue
			}
			drop = drop || mo.Drop
			for _, t := range mo.Remove {
				if x := LabelIndex(t); x >= 0 {
					k[x] = ""
					removed |= 1 << x
				}
			}
			for _, u := range mo.Upsert {
				if x := LabelIndex(u.Tag); x >= 0 {
					if act == nil { // built once: its request map is kept for the other values
						act = accesslog.Attributes(info, h)
					}
					v, ok := u.Value.Value(act)
					if !ok {
						v = "unknown"
					}
					k[x] = v
					removed &^= 1 << x
				}
			}
		}
		if drop {
			continue
		}
		m := s.overridden(overrideKey{metric: i, removed: removed, labels: k})
		switch i {
		case 0:
			m.(prometheus.Counter).Inc()
		case 1:
			m.(prometheus.Observer).Observe(float64(info.Duration.Milliseconds()))
		case 2:
			m.(prometheus.Observer).Observe(float64(info.BytesReceived))
		case 3:
			m.(prometheus.Observer).Observe(float64(info.BytesSent))
		}
	}
}

// overridden is the series of key.
func (s *Stats) overridden(key overrideKey) prometheus.Metric {
	c := &s.ov
	c.mu.RLock()
	m, ok := c.m[key]
	c.mu.RUnlock()
	if ok {
		return m
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if m, ok := c.m[key]; ok {
		return m
	}
	key.labels = *key.labels.cloned() // kept as long as the series (labelKey.cloned)
	vals := make([]string, 0, numLabels)
	for x, v := range key.labels {
		if key.removed&(1<<x) == 0 {
			vals = append(vals, v)
		}
	}
	m = seriesOf(c.vec(s, vecKey{key.metric, key.removed}), vals)
	if c.m == nil {
		c.m = map[overrideKey]prometheus.Metric{}
	}
	c.m[key] = m
	return m
}

// vec is the vector of metric k.metric with the labels k leaves; the registered one
// when it leaves none out. Called with c.mu held.
func (c *overrideCache) vec(s *Stats, k vecKey) prometheus.Collector {
	if k.removed == 0 {
		return s.registered[k.metric]
	}
	if v, ok := c.vecs[k]; ok {
		return v
	}
	names := make([]string, 0, numLabels)
	for x, n := range LabelNames {
		if k.removed&(1<<x) == 0 {
			names = append(names, n)
		}
	}
	v := newVec(k.metric, names)
	if c.vecs == nil {
		c.vecs = map[vecKey]prometheus.Collector{}
	}
	c.vecs[k] = v
	return v
}

// seriesOf is v's series for vals (v is a vector newVec made).
func seriesOf(v prometheus.Collector, vals []string) prometheus.Metric {
	if cv, ok := v.(*prometheus.CounterVec); ok {
		return cv.WithLabelValues(vals...)
	}
	return v.(*prometheus.HistogramVec).WithLabelValues(vals...).(prometheus.Metric)
}
