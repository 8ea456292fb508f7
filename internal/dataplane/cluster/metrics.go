package cluster

import "github.com/prometheus/client_golang/prometheus"

// reusedConnRetries is the Prometheus name of the keep-alive race saves
// (Stats.UpstreamRqReusedConnRetry; Envoy-style stat upstream_rq_reused_conn_retry).
var reusedConnRetries = prometheus.NewDesc("lucid_upstream_reused_conn_retries_total",
	"Requests that failed on a reused upstream connection before any response byte and were sent again on a new connection.",
	[]string{"cluster"}, nil)

// Collector exposes Lucid's own cluster metrics to Prometheus:
// lucid_upstream_reused_conn_retries_total{cluster}. Register it on the sidecar's registry.
func (m *Manager) Collector() prometheus.Collector { return managerCollector{m} }

type managerCollector struct{ m *Manager }

func (c managerCollector) Describe(ch chan<- *prometheus.Desc) { ch <- reusedConnRetries }

func (c managerCollector) Collect(ch chan<- prometheus.Metric) {
	for _, cl := range c.m.All() {
		ch <- prometheus.MustNewConstMetric(reusedConnRetries, prometheus.CounterValue,
			float64(cl.Stats().UpstreamRqReusedConnRetry.Load()), cl.Name())
	}
}
