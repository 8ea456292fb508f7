package forward

import (
	"net/http"
	"reflect"
	"testing"
)

// The upstream request's header is a copy the downstream's never sees changes through,
// whether its values sit in the exchange's array or (more than it holds) their own.
func TestUpstreamHeaderIsACopy(t *testing.T) {
	for _, n := range []int{3, 40} {
		in := http.Header{"Accept": {"*/*"}, "Via": {"a", "b"}, "X-Nil": nil}
		for i := range n {
			in.Add("X-Many", string(rune('a'+i%26)))
		}
		want := in.Clone()
		var x exchange
		h := x.upstreamHeader(in)
		if !reflect.DeepEqual(h, want) || x.envoyFields {
			t.Fatalf("%d values: clone %v, want %v; x-envoy-* field seen: %v", n, h, want, x.envoyFields)
		}
		h.Add("Accept", "text/plain") // appending copies: the neighbour's value stays
		h.Add("Via", "c")
		h["X-Many"][0] = "changed"
		x.setHeader(h, "X-Request-Id", "id")
		if !reflect.DeepEqual(in["Accept"], []string{"*/*"}) || !reflect.DeepEqual(in["Via"], []string{"a", "b"}) ||
			in["X-Many"][0] != "a" || in.Get("X-Request-Id") != "" {
			t.Fatalf("%d values: the downstream header changed: %v", n, in)
		}
		if got := h["Via"]; !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
			t.Fatalf("%d values: Via %v", n, got)
		}
	}
}

// The upstream request's header has none of the downstream's hop-by-hop fields, nor the
// fields Connection names; "te: trailers" stays (gRPC). upstreamHeader notes an x-envoy-*
// field for the retry headers, and only then.
func TestUpstreamHeaderDropsHopFields(t *testing.T) {
	for _, tc := range []struct {
		in    http.Header
		envoy bool
	}{
		{http.Header{"Connection": {"keep-alive, X-Gone"}, "X-Gone": {"1"}, "Keep-Alive": {"timeout=5"},
			"Te": {"trailers"}, "Upgrade": {"h2c"}, "Accept": {"*/*"}}, false},
		{http.Header{"Connection": {"te"}, "Te": {"trailers"}, "Proxy-Connection": {"x"},
			"Proxy-Authorization": {"y"}, "X-Envoy-Retry-On": {"5xx"}}, true},
		{http.Header{"Trailer": {"X-T"}, "Transfer-Encoding": {"chunked"}, "X-Envoyish": {"1"}}, false},
	} {
		want := tc.in.Clone()
		removeHopHeaders(want, true)
		var x exchange
		if h := x.upstreamHeader(tc.in); !reflect.DeepEqual(h, want) || x.envoyFields != tc.envoy {
			t.Errorf("%v: upstream %v (x-envoy-* seen %v), want %v (%v)", tc.in, h, x.envoyFields, want, tc.envoy)
		}
	}
}
