package forward

import (
	"net/http"
	"strings"
	"testing"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

func TestParseRetryOn(t *testing.T) {
	cases := []struct {
		in   []string
		want retryOn
	}{
		{[]string{"connect-failure", "refused-stream", "unavailable", "cancelled", "retriable-status-codes"},
			onConnectFailure | onRefusedStream | onGRPCUnavailable | onGRPCCancelled | onRetriableStatusCodes},
		{[]string{"5xx,gateway-error", " reset "}, on5xx | onGatewayError | onReset},
		{[]string{"retriable-headers", "envoy-ratelimited", "http3-post-connect-failure", "bogus"}, onRetriableHeaders | onEnvoyRateLimited},
		{[]string{"deadline-exceeded,internal,resource-exhausted,retriable-4xx,reset-before-request"},
			onGRPCDeadlineExceeded | onGRPCInternal | onGRPCResourceExhausted | onRetriable4xx | onResetBeforeRequest},
		{nil, 0},
	}
	for _, c := range cases {
		if got := parseRetryOn(c.in); got != c.want {
			t.Errorf("%q: got %b, want %b", c.in, got, c.want)
		}
	}
}

func TestWouldRetryResponse(t *testing.T) {
	pol := func(on string) *retryState {
		rs := newRetryState(&resource.RetryPolicy{RetryOn: strings.Split(on, ","), NumRetries: 1,
			RetriableStatusCodes: []uint32{418},
			RetriableHeaders:     []resource.HeaderMatcher{{Name: "x-retry", Value: resource.StringMatcher{Kind: resource.MatchExact, Value: "yes"}}}})
		return &rs
	}
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	cases := []struct {
		on   string
		code int
		hdr  http.Header
		want bool
	}{
		{"5xx", 500, nil, true},
		{"5xx", 404, nil, false},
		{"gateway-error", 500, nil, false},
		{"gateway-error", 504, nil, true},
		{"retriable-4xx", 409, nil, true},
		{"retriable-4xx", 429, nil, false},
		{"retriable-status-codes", 418, nil, true},
		{"retriable-status-codes", 503, nil, false},
		{"envoy-ratelimited", 429, h("X-Envoy-Ratelimited", "true"), true},
		{"envoy-ratelimited", 429, nil, false},
		{"retriable-headers", 200, h("X-Retry", "yes"), true},
		{"retriable-headers", 200, h("X-Retry", "no"), false},
		{"unavailable", 200, h("Grpc-Status", "14"), true},
		{"cancelled", 200, h("Grpc-Status", "1"), true},
		{"deadline-exceeded", 200, h("Grpc-Status", "4"), true},
		{"resource-exhausted", 200, h("Grpc-Status", "8"), true},
		{"internal", 200, h("Grpc-Status", "13"), true},
		{"internal", 200, h("Grpc-Status", "14"), false},
	}
	for _, c := range cases {
		hdr := c.hdr
		if hdr == nil {
			hdr = http.Header{}
		}
		if got := pol(c.on).wouldRetryResponse(c.code, &http.Response{Header: hdr}); got != c.want {
			t.Errorf("%s %d %v: got %v", c.on, c.code, c.hdr, got)
		}
	}
}

func FuzzRetryOn(f *testing.F) {
	for _, s := range []string{"5xx", "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes", ",,", " reset ,", "retriable-headers,envoy-ratelimited"} {
		f.Add(s, 503, "grpc-status", "14")
	}
	f.Fuzz(func(t *testing.T, on string, code int, hk, hv string) {
		rs := newRetryState(&resource.RetryPolicy{RetryOn: []string{on}, NumRetries: 1,
			RetriableHeaders: []resource.HeaderMatcher{{Name: strings.ToLower(hk), Present: true}}})
		// Every token the parser recognises must be a known name.
		for _, tok := range strings.Split(on, ",") {
			if b := retryOnName(strings.TrimSpace(tok)); b != 0 && rs.on&b == 0 {
				t.Fatalf("%q: token %q not set", on, tok)
			}
		}
		h := http.Header{}
		h.Set(hk, hv)
		resp := &http.Response{Header: h}
		_ = rs.wouldRetryResponse(code, resp)
		if rs.on == 0 && rs.wouldRetryResponse(code, resp) {
			t.Fatalf("%q retries with no condition", on)
		}
	})
}

func FuzzRetriableHeaderMatch(f *testing.F) {
	f.Add("x-retry", "yes", "yes", 0, false)
	f.Add("grpc-status", "14", "1", 2, true)
	f.Fuzz(func(t *testing.T, name, value, pattern string, kind int, invert bool) {
		m := resource.HeaderMatcher{Name: strings.ToLower(name), Invert: invert,
			Value: resource.StringMatcher{Kind: resource.StringMatchKind(uint(kind) % 4), Value: pattern}}
		h := http.Header{}
		h.Set(name, value)
		got := matchAnyHeader([]resource.HeaderMatcher{m}, h)
		m.Invert = !invert
		if got == matchAnyHeader([]resource.HeaderMatcher{m}, h) {
			t.Fatalf("%+v: inverting does not invert (%v)", m, got)
		}
	})
}
