package forward

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// Retry and timeout request headers (Envoy's router, honoured by Istio's sidecars): a
// client may tighten or extend the route's policy for one request.
//
//   - x-envoy-retry-on, x-envoy-retry-grpc-on: retry conditions added to the route's
//     retry_on; a request on a route without a retry policy gets Envoy's default policy
//     (1 retry, 25 ms back-off) with these conditions.
//   - x-envoy-max-retries: the number of retries, replacing num_retries (only when some
//     retry condition applies).
//   - x-envoy-retriable-status-codes: codes added to retriable_status_codes (they matter
//     with the retriable-status-codes condition).
//   - x-envoy-retriable-header-names: response header names added to retriable_headers (a
//     response carrying any of them is retried with the retriable-headers condition).
//   - x-envoy-upstream-rq-timeout-ms: the route timeout (0 disables it).
//   - x-envoy-upstream-rq-per-try-timeout-ms: the per-try timeout; ignored when it is not
//     below the route timeout, as Envoy does.
//
// Malformed values are ignored, as Envoy ignores them. The headers are removed from the
// upstream request so the next proxy does not apply them again. At the edge (a connection
// manager that uses the remote address: a gateway) no client is internal, as in Envoy
// without internal_address_config: they are stripped, never honoured (edge.go). Whoever
// sends them, a request gets at most maxHeaderRetries retries from x-envoy-max-retries.

// Envoy's request header names, canonical.
const (
	hdrRetryOn         = "X-Envoy-Retry-On"
	hdrRetryGRPCOn     = "X-Envoy-Retry-Grpc-On"
	hdrMaxRetries      = "X-Envoy-Max-Retries"
	hdrRetriableCodes  = "X-Envoy-Retriable-Status-Codes"
	hdrRetriableNames  = "X-Envoy-Retriable-Header-Names"
	hdrRqTimeout       = "X-Envoy-Upstream-Rq-Timeout-Ms"
	hdrRqPerTryTimeout = "X-Envoy-Upstream-Rq-Per-Try-Timeout-Ms"
)

var retryHeaderNames = []string{hdrRetryOn, hdrRetryGRPCOn, hdrMaxRetries, hdrRetriableCodes,
	hdrRetriableNames, hdrRqTimeout, hdrRqPerTryTimeout}

// requestOverrides is what a request's x-envoy-* headers change.
type requestOverrides struct {
	policy     *resource.RetryPolicy // nil: the route's policy applies unchanged
	timeout    time.Duration
	hasTimeout bool
}

// applyRetryHeaders reads the request's retry and timeout headers into x.over and removes
// them from the upstream request.
func (x *exchange) applyRetryHeaders() {
	if !x.envoyFields {
		return // most requests: prepare's walk saw no x-envoy-* field, no lookup per name
	}
	h := x.r.Header
	present := false
	for _, n := range retryHeaderNames {
		if _, ok := h[n]; ok {
			present = true
			x.upDel(n) // canonical
		}
	}
	if !present || !x.trustEnvoyHeaders() {
		return
	}
	base := x.policy()
	x.over = overrides(h, base, x.rt.Action.Timeout)
	if x.over.policy != nil && x.over.policy != base {
		x.info.Notes = append(x.info.Notes, "retry policy from request headers: retry_on "+
			strings.Join(x.over.policy.RetryOn, ",")+", "+strconv.Itoa(int(x.over.policy.NumRetries))+" retries")
	}
}

// overrides computes the effective retry policy and route timeout from the headers h,
// the route's policy base (nil when none) and the route timeout.
func overrides(h http.Header, base *resource.RetryPolicy, routeTimeout time.Duration) requestOverrides {
	var o requestOverrides
	o.timeout = routeTimeout
	if ms, ok := headerMillis(h.Get(hdrRqTimeout)); ok {
		o.timeout, o.hasTimeout = ms, true
	}

	p := resource.RetryPolicy{NumRetries: 1} // Envoy's defaults for a route without a policy
	if base != nil {
		p = *base
		p.RetryOn = slices.Clone(base.RetryOn)
		p.RetriableStatusCodes = slices.Clone(base.RetriableStatusCodes)
		p.RetriableHeaders = slices.Clone(base.RetriableHeaders)
	}
	changed := false
	for _, name := range []string{hdrRetryOn, hdrRetryGRPCOn} {
		for _, tok := range splitList(h.Get(name)) {
			if retryOnName(tok) != 0 && !slices.Contains(p.RetryOn, tok) {
				p.RetryOn = append(p.RetryOn, tok)
				changed = true
			}
		}
	}
	if n, err := strconv.ParseUint(strings.TrimSpace(h.Get(hdrMaxRetries)), 10, 32); err == nil {
		p.NumRetries = uint32(min(n, maxHeaderRetries))
		changed = true
	}
	for _, tok := range splitList(h.Get(hdrRetriableCodes)) {
		if c, err := strconv.ParseUint(tok, 10, 32); err == nil && c >= 100 && c <= 599 {
			p.RetriableStatusCodes = append(p.RetriableStatusCodes, uint32(c))
			changed = true
		}
	}
	for _, tok := range splitList(h.Get(hdrRetriableNames)) {
		p.RetriableHeaders = append(p.RetriableHeaders, resource.HeaderMatcher{Name: strings.ToLower(tok), Present: true})
		changed = true
	}
	if ms, ok := headerMillis(h.Get(hdrRqPerTryTimeout)); ok {
		if o.timeout <= 0 || ms < o.timeout {
			p.PerTryTimeout = ms
			changed = true
		}
	}
	switch {
	case !changed:
		o.policy = base
	case len(p.RetryOn) == 0 && p.PerTryTimeout == 0:
		o.policy = base // no condition: the headers cannot make a retry happen
	default:
		o.policy = &p
	}
	return o
}

// splitList splits a comma-separated header value into trimmed, non-empty tokens.
func splitList(v string) []string {
	var out []string
	for tok := range strings.SplitSeq(v, ",") {
		if tok = strings.TrimSpace(tok); tok != "" {
			out = append(out, tok)
		}
	}
	return out
}

// headerMillis parses a non-negative number of milliseconds.
func headerMillis(v string) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 10, 63)
	if err != nil || n > uint64(24*time.Hour/time.Millisecond)*365 {
		return 0, false
	}
	return time.Duration(n) * time.Millisecond, true
}

// maxHeaderRetries bounds the retries a request's x-envoy-max-retries may ask for.
const maxHeaderRetries = 10

// trustEnvoyHeaders says whether the request's x-envoy-* headers are honoured: on
// connection managers that do not use the remote address (Istio's sidecar listeners),
// never at the edge (edge.go).
func (x *exchange) trustEnvoyHeaders() bool {
	return !x.edge()
}

// routeTimeoutValue is the route timeout in force: the header's, else the route's.
func (x *exchange) routeTimeoutValue() time.Duration {
	if x.over.hasTimeout {
		return x.over.timeout
	}
	return x.rt.Action.Timeout
}
