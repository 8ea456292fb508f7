package forward

import (
	"net/http"
	"testing"
)

// removeHopHeaders drops the hop-by-hop fields and every field Connection names, the
// common options included ("close" names a field Close too), without allocating for the
// options nearly every message carries.
func TestRemoveHopHeaders(t *testing.T) {
	h := http.Header{
		"Connection": {"close, X-A", "Keep-Alive"},
		"Close":      {"x"},
		"X-A":        {"1"},
		"Keep-Alive": {"timeout=5"},
		"Te":         {"trailers"},
		"Other":      {"y"},
	}
	removeHopHeaders(h, false)
	if len(h) != 1 || h.Get("Other") != "y" {
		t.Fatalf("after removing hop-by-hop fields: %v, want only Other", h)
	}
	base := http.Header{"Connection": {"keep-alive"}, "Keep-Alive": {"timeout=5"}, "Content-Type": {"text/plain"}}
	h = http.Header{}
	if n := testing.AllocsPerRun(100, func() {
		for k, v := range base {
			h[k] = v
		}
		removeHopHeaders(h, false)
	}); n != 0 {
		t.Fatalf("removeHopHeaders allocates %v times for Connection: keep-alive", n)
	}
}
