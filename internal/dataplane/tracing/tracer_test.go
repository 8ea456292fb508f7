package tracing

import (
	"context"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lucid-mesh/lucid/internal/contract/logformat"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memSink keeps what it is sent; block makes Send wait until released.
type memSink struct {
	mu    sync.Mutex
	spans []*Span
	block chan struct{}
	err   error
}

func (m *memSink) Name() string { return "memory" }
func (m *memSink) Send(ctx context.Context, _ *Node, spans []*Span) error {
	if m.block != nil {
		select {
		case <-m.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	m.spans = append(m.spans, spans...)
	return nil
}

func (m *memSink) got() []*Span {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*Span(nil), m.spans...)
}

func newTestTracer(t *testing.T) (*Tracer, *Batcher, *memSink) {
	t.Helper()
	sink := &memSink{}
	node := &Node{ID: "sidecar~127.0.0.1~reviews-v1.default~default.svc.cluster.local", ServiceName: "reviews.default",
		MeshID: "cluster.local", ClusterID: "Kubernetes", Namespace: "default", CanonicalService: "reviews", CanonicalRevision: "v1"}
	b := NewBatcher(node, sink, BatchOptions{})
	t.Cleanup(func() { b.Close(context.Background()) })
	return New(*node, b), b, sink
}

func finished(h http.Header, code int, flags streaminfo.Flag, cause string) *streaminfo.Info {
	return &streaminfo.Info{Start: time.Now(), Duration: 3 * time.Millisecond, Method: "GET", Path: "/reviews/1", Protocol: "HTTP/1.1",
		Authority: "reviews:9080", RequestID: h.Get("X-Request-Id"), ResponseCode: code, Flags: flags, LucidError: cause,
		UpstreamCluster: "outbound|9080|v1|reviews.default.svc.cluster.local", UpstreamHost: "127.0.10.2:9080",
		DownstreamRemoteAddress: netip.MustParseAddrPort("127.0.10.1:40000")}
}

// formatTag is a formatter tag's parts.
func formatTag(t *testing.T, s string) []logformat.Part {
	t.Helper()
	p, err := logformat.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func attr(s *Span, k string) (string, bool) {
	for _, a := range s.Attrs {
		if a.Key == k {
			return a.Value, true
		}
	}
	return "", false
}

func TestTracerStartsAndContinuesTraces(t *testing.T) {
	tr, b, sink := newTestTracer(t)
	all := &Settings{Sampling: Sampling{Random: 100, Client: 100, Overall: 100},
		CustomTags: []CustomTag{{Name: "team", Literal: "bookinfo"}, {Name: "user", Header: "x-user", Default: "anon"},
			{Name: "outcome", Format: formatTag(t, "%RESPONSE_CODE% %RESPONSE_FLAGS% via %UPSTREAM_HOST% for %REQ(x-user)%%REQ(x-missing)%")}}}
	none := &Settings{Sampling: Sampling{Random: 0, Client: 100, Overall: 100}}

	// A request with no trace context, sampled: a root span, its context sent upstream.
	h := hdr("x-request-id", uuid4, "x-user", "jason")
	a := tr.Start(h, StartOptions{Kind: KindClient, Operation: "reviews.default.svc.cluster.local:9080/*", Settings: all, Internal: true, Scheme: "http"})
	if !a.Sampled() {
		t.Fatal("not sampled at 100 %")
	}
	up := Extract(h)
	if up.TraceID != a.span.TraceID || up.SpanID != a.span.SpanID || !up.Sampled {
		t.Fatalf("upstream context %+v, span %+v", up, a.span)
	}
	a.Finish(finished(h, 200, 0, ""))

	// The next hop (the server side) continues the trace as the child.
	a2 := tr.Start(h, StartOptions{Kind: KindServer, Settings: none, Internal: true, Scheme: "http"})
	if !a2.Sampled() || a2.span.TraceID != up.TraceID || a2.span.Parent != up.SpanID {
		t.Fatalf("server span %+v does not continue %+v", a2.span, up)
	}
	a2.Finish(finished(h, 503, streaminfo.NoHealthyUpstream, "UH: subset v3 has no endpoints"))

	// A parent that said "not sampled" is followed even at 100 %: no span exported, but
	// the context still goes on with the flag off.
	h3 := hdr("x-request-id", uuid4, "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
	a3 := tr.Start(h3, StartOptions{Kind: KindClient, Settings: all, Internal: true})
	if a3 == nil || a3.Sampled() {
		t.Fatalf("parent's not-sampled decision not followed: %+v", a3)
	}
	if c := Extract(h3); c.Sampled || c.TraceID.String() != "4bf92f3577b34da6a3ce929d0e0e4736" || c.SpanID.String() == "00f067aa0ba902b7" {
		t.Fatalf("propagated context %+v", c)
	}
	a3.Finish(finished(h3, 200, 0, ""))

	// No context and not sampled: no span, nothing added to the headers.
	h4 := hdr("x-request-id", uuid4)
	if a4 := tr.Start(h4, StartOptions{Kind: KindClient, Settings: none, Internal: true}); a4 != nil {
		t.Fatalf("span made for an unsampled request: %+v", a4)
	}
	if h4.Get("Traceparent") != "" || h4.Get("X-B3-Traceid") != "" {
		t.Fatalf("headers added for an untraced request: %v", h4)
	}

	b.Flush(context.Background())
	spans := sink.got()
	if len(spans) != 2 {
		t.Fatalf("%d spans exported, want 2", len(spans))
	}
	client, server := spans[0], spans[1]
	if client.Kind != KindClient || server.Kind != KindServer || server.Parent != client.SpanID || client.Parent.IsValid() {
		t.Fatalf("tree: client %+v server %+v", client, server)
	}
	for k, want := range map[string]string{
		"http.url": "http://reviews:9080/reviews/1", "http.method": "GET", "http.status_code": "200", "response_flags": "-",
		"upstream_cluster": "outbound|9080|v1|reviews.default.svc.cluster.local", "istio.canonical_service": "reviews",
		"istio.mesh_id": "cluster.local", "node_id": "sidecar~127.0.0.1~reviews-v1.default~default.svc.cluster.local",
		"guid:x-request-id": withNibble(uuid4, '9'), "team": "bookinfo", "user": "jason", "component": "proxy",
		"outcome": "200 - via 127.0.10.2:9080 for jason", // a formatter tag, from the finished request
	} {
		if got, _ := attr(client, k); got != want {
			t.Errorf("client span %s = %q, want %q", k, got, want)
		}
	}
	if client.Name != "reviews.default.svc.cluster.local:9080/*" {
		t.Errorf("client span name %q", client.Name)
	}
	if v, _ := attr(server, "lucid.error"); v != "UH: subset v3 has no endpoints" || !server.Error {
		t.Errorf("server span: lucid.error %q, error %v", v, server.Error)
	}
	if v, _ := attr(server, "response_flags"); v != "UH" {
		t.Errorf("server span response_flags %q", v)
	}
	if _, ok := attr(client, "error"); ok || client.Error {
		t.Errorf("a 200 marked as an error")
	}
}

func TestDisabledSpanReportingStillPropagates(t *testing.T) {
	tr, b, sink := newTestTracer(t)
	h := hdr("x-request-id", uuid4)
	a := tr.Start(h, StartOptions{Kind: KindClient, Settings: &Settings{Sampling: Sampling{Random: 100, Client: 100, Overall: 100}, Disabled: true}})
	if a == nil || a.Sampled() || !Extract(h).Sampled {
		t.Fatalf("active %+v, upstream %+v", a, Extract(h))
	}
	a.Finish(finished(h, 200, 0, ""))
	b.Flush(context.Background())
	if n := len(sink.got()); n != 0 {
		t.Fatalf("%d spans exported with span reporting disabled", n)
	}
}

// TestBatcherNeverBlocks fills the queue while the backend hangs: Add returns, the
// overflow is counted, and what was queued is exported once the backend answers.
func TestBatcherNeverBlocks(t *testing.T) {
	sink := &memSink{block: make(chan struct{})}
	b := NewBatcher(&Node{}, sink, BatchOptions{MaxQueue: 10, MaxBatch: 5, FlushEvery: time.Hour})
	for i := 0; i < 100; i++ {
		b.Add(&Span{Name: "s"})
	}
	// The loop took at most one batch of 5 and is stuck sending it; 10 more fit.
	_, dropped, _ := b.Counters()
	if dropped < 85 || dropped > 90 {
		t.Fatalf("dropped %d of 100 with room for 10 (+5 in flight)", dropped)
	}
	close(sink.block)
	b.Close(context.Background())
	exported, _, failed := b.Counters()
	if exported+dropped != 100 || failed != 0 || uint64(len(sink.got())) != exported {
		t.Fatalf("exported %d, dropped %d, failed %d, sink has %d", exported, dropped, failed, len(sink.got()))
	}
}

func TestBatcherCountsFailedExports(t *testing.T) {
	sink := &memSink{err: context.DeadlineExceeded}
	b := NewBatcher(&Node{}, sink, BatchOptions{FlushEvery: time.Hour})
	b.Add(&Span{})
	b.Add(&Span{})
	b.Close(context.Background())
	if _, _, failed := b.Counters(); failed != 2 {
		t.Fatalf("failed %d, want 2", failed)
	}
}

// A collector that hangs holds a proxy's shutdown no longer than Close's context.
func TestBatcherCloseIsBounded(t *testing.T) {
	sink := &memSink{block: make(chan struct{})}
	b := NewBatcher(&Node{}, sink, BatchOptions{MaxBatch: 1, FlushEvery: time.Hour, SendTimeout: time.Hour})
	b.Add(&Span{}) // the loop takes it and hangs in Send
	b.Add(&Span{})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan struct{})
	go func() { b.Close(ctx); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for a hung export past its context")
	}
	if exported, _, failed := b.Counters(); exported != 0 || failed != 2 {
		t.Fatalf("exported %d, failed %d, want the 2 spans counted as failed", exported, failed)
	}
}

// With the request id not used for sampling (Istio's useRequestIdForTraceSampling:
// false), every request is traced whatever the random sampling, x-request-id is left as
// it came, and a parent's decision is still followed.
func TestIgnoreRequestIDTracesEveryRequest(t *testing.T) {
	tr, _, _ := newTestTracer(t)
	s := &Settings{Sampling: Sampling{Random: 0, Client: 100, Overall: 100}, IgnoreRequestID: true}
	h := hdr("x-request-id", uuid4)
	a := tr.Start(h, StartOptions{Kind: KindClient, Settings: s, Internal: true})
	if !a.Sampled() {
		t.Fatal("not traced at 0 % random sampling with the request id ignored")
	}
	if got := h.Get("X-Request-Id"); got != uuid4 {
		t.Errorf("x-request-id %q; want it unchanged (%q), no trace reason packed", got, uuid4)
	}
	h2 := hdr("x-request-id", uuid4, "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
	if a2 := tr.Start(h2, StartOptions{Kind: KindClient, Settings: s, Internal: true}); a2.Sampled() {
		t.Error("a parent's not-sampled decision not followed")
	}
	// The same request with the request id used: not traced at 0 %.
	if a3 := tr.Start(hdr("x-request-id", uuid4), StartOptions{Kind: KindClient, Settings: &Settings{Sampling: s.Sampling}, Internal: true}); a3 != nil {
		t.Errorf("traced at 0 %% with the request id used: %+v", a3)
	}
}
