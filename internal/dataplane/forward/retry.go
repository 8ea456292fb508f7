package forward

import (
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/pool"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/route"
)

// retryOn is a parsed Envoy retry_on set.
type retryOn uint32

const (
	on5xx retryOn = 1 << iota
	onGatewayError
	onReset
	onResetBeforeRequest
	onConnectFailure
	onRetriable4xx
	onRefusedStream
	onRetriableStatusCodes
	onGRPCCancelled
	onGRPCDeadlineExceeded
	onGRPCInternal
	onGRPCResourceExhausted
	onGRPCUnavailable
	onEnvoyRateLimited
	onRetriableHeaders
)

// retryOnName is the condition a retry_on token names; 0 for one Lucid does not know.
// A switch rather than a map: parsed for every request, it costs no hashing.
func retryOnName(tok string) retryOn {
	switch tok {
	case "5xx":
		return on5xx
	case "gateway-error":
		return onGatewayError
	case "reset":
		return onReset
	case "reset-before-request":
		return onResetBeforeRequest
	case "connect-failure":
		return onConnectFailure
	case "retriable-4xx":
		return onRetriable4xx
	case "refused-stream":
		return onRefusedStream
	case "retriable-status-codes":
		return onRetriableStatusCodes
	case "cancelled":
		return onGRPCCancelled
	case "deadline-exceeded":
		return onGRPCDeadlineExceeded
	case "internal":
		return onGRPCInternal
	case "resource-exhausted":
		return onGRPCResourceExhausted
	case "unavailable":
		return onGRPCUnavailable
	case "envoy-ratelimited":
		return onEnvoyRateLimited
	case "retriable-headers":
		return onRetriableHeaders
	}
	return 0
}

// parseRetryOn reads Envoy's retry_on tokens (as the decoder split them, or a raw
// comma-separated string per element). Unknown tokens (http3-post-connect-failure, and
// anything newer) are ignored, as Envoy ignores conditions that cannot occur.
func parseRetryOn(tokens []string) retryOn {
	var on retryOn
	for _, t := range tokens {
		if b := retryOnName(t); b != 0 { // the decoder's tokens: one each, trimmed
			on |= b
			continue
		}
		for len(t) > 0 {
			tok, rest, _ := strings.Cut(t, ",")
			on |= retryOnName(strings.TrimSpace(tok))
			t = rest
		}
	}
	return on
}

// retryState is one request's retry budget and conditions (Envoy RetryStateImpl).
type retryState struct {
	policy  *resource.RetryPolicy // nil: never retry
	on      retryOn
	left    uint32
	backoff time.Duration
	max     time.Duration
}

// newRetryState is a value: the retry loop keeps it on its stack.
func newRetryState(p *resource.RetryPolicy) retryState {
	rs := retryState{policy: p}
	if p == nil {
		return rs
	}
	rs.on = parseRetryOn(p.RetryOn)
	rs.left = p.NumRetries
	rs.backoff = p.BackOffBase
	if rs.backoff <= 0 {
		rs.backoff = 25 * time.Millisecond
	}
	rs.max = p.BackOffMax
	if rs.max <= 0 {
		rs.max = 10 * rs.backoff
	}
	return rs
}

// wouldRetryConnect: a connection to the host could not be made.
func (rs *retryState) wouldRetryConnect() bool {
	return rs.on&(onConnectFailure|onResetBeforeRequest|on5xx|onGatewayError|onReset) != 0
}

// wouldRetryReset: the connection or stream was reset before response headers.
func (rs *retryState) wouldRetryReset(e *pool.ResetError) bool {
	if rs.on&onResetBeforeRequest != 0 && e.BeforeHeaders {
		return true
	}
	if rs.on&(on5xx|onGatewayError|onReset) != 0 {
		return true
	}
	return rs.on&onRefusedStream != 0 && e.Reason == pool.ReasonRemoteRefusedStream
}

// wouldRetryPerTryTimeout: Envoy treats a per-try timeout as a local reset that 5xx,
// gateway-error and reset retry.
func (rs *retryState) wouldRetryPerTryTimeout() bool {
	return rs.on&(on5xx|onGatewayError|onReset) != 0
}

// filledHeader is resp's header map with every field of the answer in it (pool.FillHeader).
func filledHeader(resp *http.Response) http.Header {
	pool.FillHeader(resp)
	return resp.Header
}

// wouldRetryResponse: the response headers ask for a retry. It reads resp's fields where
// the pool keeps them (pool.FieldValue): a plain answer's header map may not be built yet.
func (rs *retryState) wouldRetryResponse(code int, resp *http.Response) bool {
	if rs.policy == nil {
		return false
	}
	switch {
	case rs.on&on5xx != 0 && code >= 500:
		return true
	case rs.on&onGatewayError != 0 && (code == 502 || code == 503 || code == 504):
		return true
	case rs.on&onRetriable4xx != 0 && code == 409:
		return true
	case rs.on&onRetriableStatusCodes != 0 && slices.Contains(rs.policy.RetriableStatusCodes, uint32(code)):
		return true
	case rs.on&onEnvoyRateLimited != 0 && pool.FieldValue(resp, "X-Envoy-Ratelimited") != "":
		return true
	case rs.on&onRetriableHeaders != 0 && matchAnyHeader(rs.policy.RetriableHeaders, filledHeader(resp)):
		return true
	}
	if g := pool.FieldValue(resp, "Grpc-Status"); g != "" {
		n, err := strconv.Atoi(g)
		if err != nil {
			return false
		}
		switch {
		case n == 1 && rs.on&onGRPCCancelled != 0,
			n == 4 && rs.on&onGRPCDeadlineExceeded != 0,
			n == 8 && rs.on&onGRPCResourceExhausted != 0,
			n == 13 && rs.on&onGRPCInternal != 0,
			n == 14 && rs.on&onGRPCUnavailable != 0:
			return true
		}
	}
	return false
}

// take consumes one retry; false when the budget is spent.
func (rs *retryState) take() bool {
	if rs.policy == nil || rs.left == 0 {
		return false
	}
	rs.left--
	return true
}

// wait is the full-jitter exponential back-off before retry n (1-based): a random
// duration in [0, min((2^n-1)·base, max)).
func (rs *retryState) wait(n int) time.Duration {
	ceil := rs.max
	if n < 30 {
		if c := time.Duration((1<<n)-1) * rs.backoff; c < ceil {
			ceil = c
		}
	}
	if ceil <= 0 {
		return 0
	}
	return rand.N(ceil)
}

// matchAnyHeader says whether the response headers match any of the retriable_headers
// matchers, with Envoy's HeaderMatcher semantics (route.Matches on a request that carries
// only these headers).
func matchAnyHeader(ms []resource.HeaderMatcher, h http.Header) bool {
	r := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/"}, Header: h}
	for i := range ms {
		m := resource.RouteMatch{PathKind: resource.PathPrefix, Path: "/", Headers: ms[i : i+1]}
		if route.Matches(&m, r) {
			return true
		}
	}
	return false
}
