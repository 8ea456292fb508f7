package stats

import (
	"net/http"
	"slices"
	"sync"

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

// overrideKey is one metric's series under overrides.
type overrideKey struct {
	metric int
	labels labelKey
}

// overrideCache holds the series recorded under overrides, one metric at a time (a
// dropped metric must not appear, so the four are not created together).
type overrideCache struct {
	mu sync.RWMutex
	m  map[overrideKey]prometheus.Metric
}

// RecordWith counts one finished request as its listener's overrides say (the Telemetry
// API's metrics: a metric dropped, labels removed or set from an expression over the
// request, h its downstream headers). Without overrides it is Record.
func (s *Stats) RecordWith(info *streaminfo.Info, ov *resource.StatsOverrides, h http.Header) {
	if ov == nil {
		s.Record(info)
		return
	}
	var base labelKey
	s.fill(&base, info)
	for i, name := range httpMetricNames {
		k, drop := base, false
		for j := range ov.Metrics {
			mo := &ov.Metrics[j]
			if mo.Name != "" && mo.Name != name {
				continue
			}
			drop = drop || mo.Drop
			for _, t := range mo.Remove {
				if x := LabelIndex(t); x >= 0 {
					k[x] = ""
				}
			}
			for _, u := range mo.Upsert {
				if x := LabelIndex(u.Tag); x >= 0 {
					v, ok := u.Value.Value(accesslog.Attributes(info, h))
					if !ok {
						v = "unknown"
					}
					k[x] = v
				}
			}
		}
		if drop {
			continue
		}
		m := s.overridden(i, &k)
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

// overridden is metric i's series for labels k.
func (s *Stats) overridden(i int, k *labelKey) prometheus.Metric {
	key := overrideKey{metric: i, labels: *k}
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
	switch i {
	case 0:
		m = s.requests.WithLabelValues(k[:]...)
	case 1:
		m = s.duration.WithLabelValues(k[:]...).(prometheus.Metric)
	case 2:
		m = s.reqBytes.WithLabelValues(k[:]...).(prometheus.Metric)
	default:
		m = s.respBytes.WithLabelValues(k[:]...).(prometheus.Metric)
	}
	if c.m == nil {
		c.m = map[overrideKey]prometheus.Metric{}
	}
	c.m[key] = m
	return m
}
