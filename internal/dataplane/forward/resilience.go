package forward

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"

	"github.com/lucid-mesh/lucid/internal/dataplane/cluster"
	"github.com/lucid-mesh/lucid/internal/dataplane/pool"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// Circuit breakers (Envoy's per-cluster thresholds, from DestinationRule connectionPool)
// and outlier-detection reports.
//
//   - max_requests (http2MaxRequests): requests in flight to the cluster; one more fails
//     at once with 503 UO.
//   - max_connections (tcp.maxConnections) and max_pending_requests
//     (http1MaxPendingRequests): in the pool (pool/h1.go, and pool/h2.go for HTTP/2 with
//     http.maxConcurrentStreams and http.maxRequestsPerConnection): at max_connections a
//     request waits for a connection (HTTP/2: a free stream); beyond max_pending_requests
//     waiting it fails with 503 UO.
//   - max_retries (http.maxRetries), or the retry budget (trafficPolicy.retryBudget):
//     retries in flight; a retry beyond it is not made, the failure it would have
//     retried is returned, with UO added (upstream_rq_retry_overflow).
//
// Envoy never retries an overflow. Zero thresholds mean Envoy's defaults (1024, 1024,
// 1024, 3); Istio sets all four to 2^32-1.

// threshold is a breaker value with Envoy's default for 0.
func threshold(v uint32, def int64) int64 {
	if v == 0 {
		return def
	}
	return int64(v)
}

// istioName names the DestinationRule field behind an Envoy threshold.
func istioName(limit string) string {
	switch limit {
	case "max_requests":
		return "trafficPolicy.connectionPool.http.http2MaxRequests"
	case "max_pending_requests":
		return "trafficPolicy.connectionPool.http.http1MaxPendingRequests (with connectionPool.tcp.maxConnections reached)"
	case "max_retries":
		return "trafficPolicy.connectionPool.http.maxRetries"
	case "retry_budget":
		return "trafficPolicy.retryBudget"
	}
	return limit
}

// limitName is istioName for this request's cluster: on HTTP/2 upstreams requests wait
// for a free stream, so max_pending_requests is reached when every connection is at its
// stream limit.
func (x *exchange) limitName(limit string) string {
	if limit == "max_pending_requests" && (x.cl.Config().Protocol == resource.HTTP2 ||
		(x.cl.Config().Protocol == resource.Downstream && x.r.ProtoMajor == 2)) {
		return "trafficPolicy.connectionPool.http.http1MaxPendingRequests (with connectionPool.tcp.maxConnections " +
			"connections at connectionPool.http.maxConcurrentStreams streams each, or the server's own stream limit)"
	}
	return istioName(limit)
}

// admit counts one request in flight to the cluster (upstream_rq_active), or refuses it
// when max_requests is reached.
func (x *exchange) admit() (failure, bool) {
	stats := x.cl.Stats()
	limit := threshold(x.cl.Config().MaxRequests, 1024)
	if n := stats.UpstreamRqActive.Add(1); n > limit {
		stats.UpstreamRqActive.Add(-1)
		stats.UpstreamRqOverflow.Add(1)
		return x.overflow("max_requests", int(limit)), false
	}
	return failure{}, true
}

// overflow is the local reply of a circuit breaker that refused the request.
func (x *exchange) overflow(limit string, value int) failure {
	stats := x.cl.Stats()
	stats.UpstreamRqPendingOverflow.Add(1)
	if limit == "max_pending_requests" {
		stats.UpstreamCxOverflow.Add(1)
	}
	x.chargeLocal(http.StatusServiceUnavailable)
	return failure{Reply: Reply{
		Flag: streaminfo.UpstreamOverflow, Status: http.StatusServiceUnavailable,
		Body:    "upstream connect error or disconnect/reset before headers. reset reason: overflow",
		Details: "upstream_reset_before_response_started{overflow}",
		Explanation: "circuit breaker of cluster " + x.cl.Config().Name + " open: " + limit + " " +
			strconv.Itoa(value) + " reached (DestinationRule " + x.limitName(limit) + ")",
	}}
}

// retryAdmitted takes a retry slot from the cluster's max_retries breaker or retry budget.
// When none is free the retry is not made: UO is added to the flags.
func (x *exchange) retryAdmitted() bool {
	cfg := x.cl.Config()
	stats := x.cl.Stats()
	var limit int64
	name := "max_retries"
	if b := cfg.RetryBudget; b != nil {
		name = "retry_budget"
		active := stats.UpstreamRqActive.Load() + stats.UpstreamRqPendingActive.Load()
		limit = max(int64(math.Ceil(float64(active)*b.BudgetPercent/100)), int64(b.MinRetryConcurrency))
	} else {
		limit = threshold(cfg.MaxRetries, 3)
	}
	if n := stats.RetriesActive.Add(1); n > limit {
		stats.RetriesActive.Add(-1)
		stats.UpstreamRqRetryOverflow.Add(1)
		x.info.Flags |= streaminfo.UpstreamOverflow
		x.notRetried.set(retryOverflow, "; not retried: circuit breaker "+name+" ("+strconv.FormatInt(limit, 10)+
			" retries in flight) of cluster "+cfg.Name+" reached (DestinationRule "+istioName(name)+")")
		return false
	}
	x.retrySlots++
	return true
}

// releaseRetries gives back the retry slots the request holds; it runs when the request's
// upstream exchange ends.
func (x *exchange) releaseRetries() {
	if x.retrySlots > 0 && x.cl != nil {
		x.cl.Stats().RetriesActive.Add(-int64(x.retrySlots))
		x.retrySlots = 0
	}
}

// reportFailure tells outlier detection about an attempt that got no response. Overflows
// and requests the client (or the route timeout) ended are not the host's fault.
func (x *exchange) reportFailure(host *cluster.Host, err error) {
	var oe *pool.OverflowError
	switch {
	case errors.As(err, &oe), errors.Is(err, errRouteTimeout), errors.Is(err, context.Canceled):
		return
	case errors.Is(err, errPerTryTimeout):
		x.cl.ReportLocalFailure(host, cluster.LocalTimeout)
	default:
		x.cl.ReportLocalFailure(host, cluster.LocalConnectFailed)
	}
}
