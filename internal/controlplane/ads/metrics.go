package ads

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lucid-mesh/lucid/internal/contract"
)

// Metrics are istiod's push metrics, by Istio's names, for the control plane's /metrics.
type Metrics struct {
	// Pushes counts responses sent, by type (cds, eds, lds, rds): pilot_xds_pushes.
	Pushes *prometheus.CounterVec
	// PushTime is, per response, the time from the start of a connection's push to the
	// response's send, by type: pilot_xds_push_time.
	PushTime *prometheus.HistogramVec
	// Convergence is the time from a configuration change (the debounce's first event) to a
	// proxy having been sent everything it needs: pilot_proxy_convergence_time.
	Convergence prometheus.Histogram
	// Debounce is the time from the first change entering the debounce to the push it
	// became: pilot_debounce_time (observed by the store, see DebounceObserver).
	Debounce prometheus.Histogram
	// Rejects counts NACKs by type: pilot_total_xds_rejects.
	Rejects *prometheus.CounterVec
	// Connected is the number of xDS streams open: pilot_xds.
	Connected prometheus.GaugeFunc
}

// Istio's buckets for its push and convergence histograms (seconds).
var pushBuckets = []float64{.01, .1, 1, 3, 5, 10, 20, 30}

// NewMetrics makes the metrics for s and registers them with reg.
func NewMetrics(s *Server, reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pilot_xds_pushes", Help: "Pilot build and send errors for lds, rds, cds and eds.",
		}, []string{"type"}),
		PushTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "pilot_xds_push_time", Help: "Total time in seconds Pilot takes to push lds, rds, cds and eds.",
			Buckets: pushBuckets,
		}, []string{"type"}),
		Convergence: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "pilot_proxy_convergence_time", Help: "Delay in seconds between config change and a proxy receiving all required configuration.",
			Buckets: []float64{.1, .5, 1, 3, 5, 10, 20, 30},
		}),
		Debounce: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "pilot_debounce_time", Help: "Delay in seconds between the first config enters debouncing and the merged push request is pushed into the push queue.",
			Buckets: []float64{.01, .1, 1, 3, 5, 10, 20, 30},
		}),
		Rejects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pilot_total_xds_rejects", Help: "Total number of XDS responses from pilot rejected by proxy.",
		}, []string{"type"}),
		Connected: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "pilot_xds", Help: "Number of endpoints connected to this pilot using XDS.",
		}, func() float64 {
			s.mu.Lock()
			defer s.mu.Unlock()
			return float64(len(s.conns))
		}),
	}
	for _, c := range []prometheus.Collector{m.Pushes, m.PushTime, m.Convergence, m.Debounce, m.Rejects, m.Connected} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// DebounceObserver is what the store calls with each debounce's length.
func (m *Metrics) DebounceObserver() func(time.Duration) {
	return func(d time.Duration) { m.Debounce.Observe(d.Seconds()) }
}

func metricType(typeURL string) string { return strings.ToLower(contract.ShortType(typeURL)) }

func (m *Metrics) pushed(typeURL string, start, now time.Time) {
	t := metricType(typeURL)
	m.Pushes.WithLabelValues(t).Inc()
	if !start.IsZero() {
		m.PushTime.WithLabelValues(t).Observe(now.Sub(start).Seconds())
	}
}

func (m *Metrics) converged(start, now time.Time, _ bool) {
	m.Convergence.Observe(now.Sub(start).Seconds())
}

func (m *Metrics) rejected(typeURL string) { m.Rejects.WithLabelValues(metricType(typeURL)).Inc() }
