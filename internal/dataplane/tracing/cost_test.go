package tracing

import (
	"net/http"
	"testing"
)

// TestUnsampledRequestAllocatesNothing: at Istio's default 1 % sampling almost every
// request is not traced and continues no trace; deciding that must cost no allocation
// (the request id is handed back, not written into the headers).
func TestUnsampledRequestAllocatesNothing(t *testing.T) {
	tr, _, _ := newTestTracer(t)
	s := &Settings{Sampling: Sampling{Random: 0, Client: 100, Overall: 100}}
	h := http.Header{"User-Agent": {"curl"}, "Accept": {"*/*"}}
	const id = "0d1c3bb4-5c4c-4c4b-9c3e-2f0e5b1c7a10"
	var got string
	var a *Active
	allocs := testing.AllocsPerRun(100, func() {
		a, got = tr.StartRequest(id, h, s, StartOptions{Kind: KindClient, Internal: true, Scheme: "http"})
	})
	if a != nil || got != id {
		t.Fatalf("StartRequest = %v, %q; want no span and the id unchanged", a, got)
	}
	if allocs != 0 {
		t.Errorf("an unsampled request allocates %v times; want 0", allocs)
	}
	if len(h) != 2 {
		t.Errorf("headers written for an unsampled request: %v", h)
	}
}

// TestStartRequestPacksReason: a sampled request gets the reason packed into the id it
// gets back, and the span context in the headers; the id is never written into h.
func TestStartRequestPacksReason(t *testing.T) {
	tr, _, _ := newTestTracer(t)
	h := http.Header{}
	a, id := tr.StartRequest("0d1c3bb4-5c4c-4c4b-9c3e-2f0e5b1c7a10", h, &Settings{Sampling: Sampling{Random: 100, Client: 100, Overall: 100}},
		StartOptions{Kind: KindServer})
	if a == nil || !a.Sampled() {
		t.Fatal("no sampled span at 100 % sampling")
	}
	if id != "0d1c3bb4-5c4c-9c4b-9c3e-2f0e5b1c7a10" {
		t.Errorf("id = %q; want the version digit 9 (sampled)", id)
	}
	if h.Get("Traceparent") == "" || h.Get("X-Request-Id") != "" {
		t.Errorf("headers = %v; want traceparent and no x-request-id", h)
	}
}
