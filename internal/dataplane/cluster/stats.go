package cluster

import "sync/atomic"

// Stats are one cluster's Envoy stats (cluster.<name>.<stat>). Counters are atomic.Uint64;
// gauges (…_active, membership_…) are atomic.Int64. A cluster keeps its Stats across
// updates as long as its name stays. Who counts what:
//   - Pick counts upstream_cx_none_healthy when it returns a *NoHealthyError;
//   - Manager.Update sets membership_healthy and membership_total;
//   - everything else is counted by forward and pool.
type Stats struct {
	MembershipHealthy, MembershipTotal atomic.Int64

	UpstreamCxTotal, UpstreamCxHTTP1Total, UpstreamCxHTTP2Total             atomic.Uint64
	UpstreamCxActive                                                        atomic.Int64
	UpstreamCxConnectFail, UpstreamCxConnectTimeout, UpstreamCxNoneHealthy  atomic.Uint64
	UpstreamCxDestroyLocalWithActiveRq, UpstreamCxDestroyRemoteWithActiveRq atomic.Uint64

	UpstreamRqTotal, UpstreamRqCompleted                                      atomic.Uint64
	UpstreamRqActive, UpstreamRqPendingActive                                 atomic.Int64
	UpstreamRqPendingTotal, UpstreamRqPendingOverflow                         atomic.Uint64
	UpstreamRq1xx, UpstreamRq2xx, UpstreamRq3xx, UpstreamRq4xx, UpstreamRq5xx atomic.Uint64
	UpstreamRqRetry, UpstreamRqRetrySuccess                                   atomic.Uint64
	UpstreamRqRetryLimitExceeded, UpstreamRqRetryOverflow                     atomic.Uint64
	UpstreamRqTimeout, UpstreamRqPerTryTimeout                                atomic.Uint64
	UpstreamRqRxReset, UpstreamRqTxReset                                      atomic.Uint64

	// Lucid: requests retried once on a new connection after failing on a reused one
	// before any response byte (the keep-alive race); Prometheus
	// lucid_upstream_reused_conn_retries_total{cluster}.
	UpstreamRqReusedConnRetry atomic.Uint64
	UpstreamCxOverflow        atomic.Uint64 // upstream_cx_overflow
	UpstreamRqOverflow        atomic.Uint64 // max_requests overflow (counted in upstream_rq_pending_overflow too)
	// RetriesActive is the number of retries in flight (the max_retries breaker and the
	// retry budget count it; Envoy's circuit_breakers.default.rq_retry_open).
	RetriesActive atomic.Int64

	// outlier_detection.*
	OutlierEjectionsEnforced, OutlierEjectionsOverflow                     atomic.Uint64
	OutlierDetected5xx, OutlierDetectedGateway, OutlierDetectedLocalOrigin atomic.Uint64
}

// Each calls f with every stat's Envoy name ("upstream_cx_total", ...) and value, sorted by
// name. Negative gauges (a bug elsewhere) are reported as 0.
func (s *Stats) Each(f func(name string, v uint64)) {
	f("membership_healthy", gauge(&s.MembershipHealthy))
	f("membership_total", gauge(&s.MembershipTotal))
	f("outlier_detection.ejections_detected_consecutive_5xx", s.OutlierDetected5xx.Load())
	f("outlier_detection.ejections_detected_consecutive_gateway_failure", s.OutlierDetectedGateway.Load())
	f("outlier_detection.ejections_detected_consecutive_local_origin_failure", s.OutlierDetectedLocalOrigin.Load())
	f("outlier_detection.ejections_enforced_total", s.OutlierEjectionsEnforced.Load())
	f("outlier_detection.ejections_overflow", s.OutlierEjectionsOverflow.Load())
	f("upstream_cx_active", gauge(&s.UpstreamCxActive))
	f("upstream_cx_connect_fail", s.UpstreamCxConnectFail.Load())
	f("upstream_cx_connect_timeout", s.UpstreamCxConnectTimeout.Load())
	f("upstream_cx_destroy_local_with_active_rq", s.UpstreamCxDestroyLocalWithActiveRq.Load())
	f("upstream_cx_destroy_remote_with_active_rq", s.UpstreamCxDestroyRemoteWithActiveRq.Load())
	f("upstream_cx_http1_total", s.UpstreamCxHTTP1Total.Load())
	f("upstream_cx_http2_total", s.UpstreamCxHTTP2Total.Load())
	f("upstream_cx_none_healthy", s.UpstreamCxNoneHealthy.Load())
	f("upstream_cx_overflow", s.UpstreamCxOverflow.Load())
	f("upstream_cx_total", s.UpstreamCxTotal.Load())
	f("upstream_rq_1xx", s.UpstreamRq1xx.Load())
	f("upstream_rq_2xx", s.UpstreamRq2xx.Load())
	f("upstream_rq_3xx", s.UpstreamRq3xx.Load())
	f("upstream_rq_4xx", s.UpstreamRq4xx.Load())
	f("upstream_rq_5xx", s.UpstreamRq5xx.Load())
	f("upstream_rq_active", gauge(&s.UpstreamRqActive))
	f("upstream_rq_completed", s.UpstreamRqCompleted.Load())
	f("upstream_rq_pending_active", gauge(&s.UpstreamRqPendingActive))
	f("upstream_rq_pending_overflow", s.UpstreamRqPendingOverflow.Load())
	f("upstream_rq_pending_total", s.UpstreamRqPendingTotal.Load())
	f("upstream_rq_per_try_timeout", s.UpstreamRqPerTryTimeout.Load())
	f("upstream_rq_retry", s.UpstreamRqRetry.Load())
	f("upstream_rq_retry_limit_exceeded", s.UpstreamRqRetryLimitExceeded.Load())
	f("upstream_rq_retry_open", gauge(&s.RetriesActive))
	f("upstream_rq_retry_overflow", s.UpstreamRqRetryOverflow.Load())
	f("upstream_rq_retry_success", s.UpstreamRqRetrySuccess.Load())
	f("upstream_rq_reused_conn_retry", s.UpstreamRqReusedConnRetry.Load())
	f("upstream_rq_rx_reset", s.UpstreamRqRxReset.Load())
	f("upstream_rq_timeout", s.UpstreamRqTimeout.Load())
	f("upstream_rq_total", s.UpstreamRqTotal.Load())
	f("upstream_rq_tx_reset", s.UpstreamRqTxReset.Load())
}

// IsGauge says whether a stat named by Stats.Each or HostStats.Each is a gauge (the
// others are counters).
func IsGauge(name string) bool {
	switch name {
	case "membership_healthy", "membership_total", "upstream_cx_active", "upstream_rq_active",
		"upstream_rq_pending_active", "upstream_rq_retry_open", "cx_active", "rq_active":
		return true
	}
	return false
}

// HostStats are Envoy's per-host stats, as the admin /clusters page shows them. A Host keeps
// them across updates while its cluster keeps its address.
type HostStats struct {
	CxTotal, CxConnectFail                 atomic.Uint64
	CxActive                               atomic.Int64
	RqTotal, RqSuccess, RqError, RqTimeout atomic.Uint64
	RqActive                               atomic.Int64 // LEAST_REQUEST reads it

	streams hostStreams // removal.go: the long-lived streams tracked on the host
	cluster *Stats      // the stats of the host's cluster (ClusterStats)
}

// ClusterStats are the stats of the cluster the host belongs to (shared, like the host's,
// across updates); nil for a HostStats made on its own.
func (s *HostStats) ClusterStats() *Stats { return s.cluster }

// Each calls f with every host stat's Envoy name and value, in the order of Envoy's
// /clusters output: cx_total, cx_active, cx_connect_fail, rq_total, rq_timeout,
// rq_success, rq_error, rq_active.
func (s *HostStats) Each(f func(name string, v uint64)) {
	f("cx_total", s.CxTotal.Load())
	f("cx_active", gauge(&s.CxActive))
	f("cx_connect_fail", s.CxConnectFail.Load())
	f("rq_total", s.RqTotal.Load())
	f("rq_timeout", s.RqTimeout.Load())
	f("rq_success", s.RqSuccess.Load())
	f("rq_error", s.RqError.Load())
	f("rq_active", gauge(&s.RqActive))
}

func gauge(g *atomic.Int64) uint64 {
	return uint64(max(g.Load(), 0))
}
