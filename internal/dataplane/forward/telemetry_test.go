package forward_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/contract/logformat"
	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/peermeta"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
	"github.com/lucid-mesh/lucid/internal/dataplane/tracing"
	"github.com/lucid-mesh/lucid/internal/testutil/telemetrytest"
)

// headerRecorder is an upstream app that records the headers of what it gets and answers
// with extra response headers.
type headerRecorder struct {
	mu   sync.Mutex
	last http.Header
	resp http.Header
}

func (h *headerRecorder) serve(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.last = r.Header.Clone()
	for k, v := range h.resp {
		w.Header()[k] = v
	}
	h.mu.Unlock()
	_, _ = w.Write([]byte("ok"))
}

func (h *headerRecorder) got() http.Header {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

const otelCluster = "outbound|4317||otel.observability.svc.cluster.local"

func tracingHCM(random float64) *resource.HTTPManager {
	return &resource.HTTPManager{ServerName: "istio-envoy", Tracing: &resource.Tracing{
		Provider:       resource.TracingProvider{Kind: "opentelemetry", Cluster: otelCluster},
		RandomSampling: random, ClientSampling: 100, OverallSampling: 100,
		CustomTags: []resource.TracingTag{{Name: "team", Literal: "books"},
			{Name: "outcome", Format: []logformat.Part{{Op: "RESPONSE_CODE"}, {Literal: " from "}, {Op: "UPSTREAM_CLUSTER"}}}},
	}}
}

func decoratedRoute(cluster string) resource.Route {
	r := toCluster(cluster)
	r.Operation = "reviews.default.svc.cluster.local:9080/*"
	return r
}

// A request through a listener that traces gets a span from the tracer of its provider,
// exported to a real collector through the provider's cluster, and carries the span's
// context upstream; the sampling decision follows Envoy's and Istio's rules.
func TestRequestSpans(t *testing.T) {
	col := telemetrytest.StartCollector(t, "127.0.123.50")
	ps := tracing.NewProviders(tracing.Node{ID: "sidecar~127.0.123.51~productpage-v1.default~default.svc.cluster.local", ServiceName: "productpage.default",
		MeshID: "cluster.local", CanonicalService: "productpage"},
		func(string) (string, error) { return col.GRPCAddr, nil }, tracing.BatchOptions{FlushEvery: 50 * time.Millisecond})
	defer ps.Close(context.Background())
	app := &headerRecorder{}
	rc := routes(decoratedRoute("reviews"))
	rc.VirtualHosts = append([]resource.VirtualHost{{Name: "down", Domains: []string{"down:9080"}, Routes: []resource.Route{toCluster("down")}}}, rc.VirtualHosts...)
	e := newEnvWith(t, func(o *forward.Options) { o.Tracers = ps }, rc, static("reviews", backend(t, app.serve)), static("down", refusedAddr(t)))
	send := func(h http.Header) http.Header {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, e.url+"/reviews/1", nil)
		req.Host = "reviews:9080"
		for k, v := range h {
			req.Header[k] = v
		}
		if r := e.do(e.h1, req); r.code != 200 {
			t.Fatalf("got %d %q", r.code, r.body)
		}
		<-e.infos
		return app.got()
	}
	const rid = "5c1d7a4e-0f7c-4b3c-9d6e-1f2a3b4c5d6e"

	t.Run("sampled: a client span, its context sent upstream", func(t *testing.T) {
		e.hcm = tracingHCM(100)
		up := send(http.Header{"X-Request-Id": {rid}})
		tp := up.Get("Traceparent")
		if len(tp) != 55 || !strings.HasSuffix(tp, "-01") || up.Get("X-B3-Sampled") != "1" || up.Get("X-B3-Traceid") != tp[3:35] {
			t.Fatalf("upstream trace headers: %v", up)
		}
		if got := up.Get("X-Request-Id"); got[14] != '9' || got[:14] != rid[:14] {
			t.Errorf("x-request-id upstream %q, want the trace reason '9' packed in", got)
		}
		spans := col.WaitSpans(t, 10*time.Second, func(s []telemetrytest.Span) bool { return len(telemetrytest.InTrace(s, tp[3:35])) == 1 })
		s := telemetrytest.InTrace(spans, tp[3:35])[0]
		if s.SpanID != tp[36:52] || s.Kind != 3 || s.ParentSpanID != "" || s.Name != "reviews.default.svc.cluster.local:9080/*" ||
			s.Service != "productpage.default" || s.Attrs["upstream_cluster"] != "reviews" || s.Attrs["http.status_code"] != "200" ||
			s.Attrs["team"] != "books" || s.Attrs["outcome"] != "200 from reviews" || s.Attrs["guid:x-request-id"] != up.Get("X-Request-Id") || s.Attrs["http.url"] != "http://reviews:9080/reviews/1" {
			t.Fatalf("span as stored: %+v", s)
		}
	})
	t.Run("not sampled: no span, nothing propagated", func(t *testing.T) {
		e.hcm = tracingHCM(0)
		up := send(http.Header{"X-Request-Id": {rid}})
		if up.Get("Traceparent") != "" || up.Get("X-B3-Traceid") != "" || up.Get("X-Request-Id")[14] != '4' {
			t.Fatalf("upstream headers of an unsampled request: %v", up)
		}
	})
	t.Run("a sampled parent is continued whatever the random sampling", func(t *testing.T) {
		e.hcm = tracingHCM(0)
		e.direction = "inbound"
		defer func() { e.direction = "" }()
		const trace = "11111111111111111111111111111111"
		up := send(http.Header{"Traceparent": {"00-" + trace + "-2222222222222222-01"}, "Tracestate": {"vendor=x"}})
		tp := up.Get("Traceparent")
		if tp[3:35] != trace || tp[36:52] == "2222222222222222" || up.Get("Tracestate") != "vendor=x" || up.Get("X-B3-Parentspanid") != "2222222222222222" {
			t.Fatalf("upstream headers: %v", up)
		}
		spans := col.WaitSpans(t, 10*time.Second, func(s []telemetrytest.Span) bool { return len(telemetrytest.InTrace(s, trace)) == 1 })
		if s := telemetrytest.InTrace(spans, trace)[0]; s.Kind != 2 || s.ParentSpanID != "2222222222222222" || s.SpanID != tp[36:52] {
			t.Fatalf("inbound span as stored: %+v", s)
		}
	})
	t.Run("x-envoy-force-trace from inside the mesh, not from the edge", func(t *testing.T) {
		e.hcm = tracingHCM(0)
		up := send(http.Header{"X-Request-Id": {rid}, "X-Envoy-Force-Trace": {"1"}})
		if tp := up.Get("Traceparent"); !strings.HasSuffix(tp, "-01") || up.Get("X-Request-Id")[14] != 'a' {
			t.Fatalf("forced inside the mesh: %v", up)
		}
		edge := tracingHCM(0)
		edge.UseRemoteAddress = true
		e.hcm = edge
		up = send(http.Header{"X-Request-Id": {rid}, "X-Envoy-Force-Trace": {"1"}})
		if up.Get("Traceparent") != "" || up.Get("X-Request-Id")[14] != '4' || up.Get("X-Envoy-Force-Trace") != "" {
			t.Fatalf("forced from outside: %v", up)
		}
	})
	t.Run("a failure's span says why", func(t *testing.T) {
		e.hcm = tracingHCM(100)
		req, _ := http.NewRequest(http.MethodGet, e.url+"/", nil)
		req.Host = "down:9080"
		if r := e.do(e.h1, req); r.code != 503 {
			t.Fatalf("got %d %q", r.code, r.body)
		}
		info := <-e.infos
		ps.Flush(context.Background())
		spans := col.WaitSpans(t, 10*time.Second, func(s []telemetrytest.Span) bool {
			for _, x := range s {
				if x.Attrs["guid:x-request-id"] == info.RequestID {
					return true
				}
			}
			return false
		})
		for _, s := range spans {
			if s.Attrs["guid:x-request-id"] != info.RequestID {
				continue
			}
			if !s.Error || s.Attrs["response_flags"] != "UF,URX" && s.Attrs["response_flags"] != "UF" || s.Attrs["http.status_code"] != "503" ||
				!strings.HasPrefix(s.Attrs["lucid.error"], "UF") {
				t.Fatalf("failed request's span: %+v", s)
			}
		}
	})
	t.Run("a parent that sampled out is followed", func(t *testing.T) {
		e.hcm = tracingHCM(100)
		const trace = "33333333333333333333333333333333"
		up := send(http.Header{"Traceparent": {"00-" + trace + "-4444444444444444-00"}})
		if tp := up.Get("Traceparent"); tp[3:35] != trace || !strings.HasSuffix(tp, "-00") || up.Get("X-B3-Sampled") != "0" {
			t.Fatalf("upstream headers: %v", up)
		}
		ps.Flush(context.Background())
		if n := len(telemetrytest.InTrace(col.Spans(t), trace)); n != 0 {
			t.Fatalf("%d spans for a sampled-out trace", n)
		}
	})
}

// Spans never hold a request up: with the collector unreachable and the queue full,
// requests are answered as ever and the lost spans are counted.
func TestSpansDroppedAndFailedAreCounted(t *testing.T) {
	dead := refusedAddr(t)
	ps := tracing.NewProviders(tracing.Node{ID: "sidecar~x"}, func(string) (string, error) { return dead, nil },
		tracing.BatchOptions{MaxQueue: 2, FlushEvery: time.Hour, SendTimeout: time.Second})
	e := newEnvWith(t, func(o *forward.Options) { o.Tracers = ps }, routes(decoratedRoute("reviews")), static("reviews", backend(t, (&headerRecorder{}).serve)))
	e.hcm = tracingHCM(100)
	for range 5 {
		if r := e.get("/"); r.code != 200 {
			t.Fatalf("got %d %q", r.code, r.body)
		}
		<-e.infos
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ps.Close(ctx)
	got := map[string]uint64{}
	ps.EmitCounters(func(name string, v uint64) { got[name] = v })
	if got["tracing.opentelemetry.spans_dropped"] != 3 || got["tracing.opentelemetry.spans_failed"] != 2 || got["tracing.opentelemetry.spans_sent"] != 0 {
		t.Fatalf("counters %v, want 3 dropped, 2 failed", got)
	}
	// A cluster with no endpoint is a failed export too, not a crash.
	ps2 := tracing.NewProviders(tracing.Node{}, func(string) (string, error) { return "", errors.New("no healthy upstream") }, tracing.BatchOptions{FlushEvery: time.Hour})
	// The answer reaches the client before the span ends (finish runs after it): the
	// observer, which runs after the span ended, says when it is queued.
	ended := make(chan struct{}, 1)
	e.fwd = forward.New(forward.Options{Clusters: e.cm, Pools: e.ps, Tracers: ps2,
		Observers: []func(*streaminfo.Info){func(*streaminfo.Info) { ended <- struct{}{} }}})
	if r := e.get("/"); r.code != 200 {
		t.Fatalf("got %d", r.code)
	}
	<-ended
	ps2.Close(ctx)
	got = map[string]uint64{}
	ps2.EmitCounters(func(name string, v uint64) { got[name] = v })
	if got["tracing.opentelemetry.spans_failed"] != 1 {
		t.Fatalf("counters %v, want 1 failed", got)
	}
}

func encode(t *testing.T, w peermeta.Workload) forward.PeerMetadata {
	t.Helper()
	id, v, err := peermeta.Encode(w)
	if err != nil {
		t.Fatal(err)
	}
	return forward.PeerMetadata{ID: id, Value: v}
}

// Istio's metadata exchange on plaintext: the inbound side labels the request's source
// from the client's headers and answers with its own; the outbound side sends its own to
// mesh services only and labels the destination from the answer; neither application
// sees the headers.
func TestPeerMetadataExchange(t *testing.T) {
	reviews := encode(t, peermeta.Workload{NodeID: "sidecar~127.0.0.2~reviews-v1.default~default.svc.cluster.local", Name: "reviews-v1-abc",
		Namespace: "default", WorkloadName: "reviews-v1", ClusterID: "Kubernetes",
		Labels: map[string]string{"app": "reviews", "version": "v1", peermeta.LabelCanonicalName: "reviews-canon"}})
	ratings := encode(t, peermeta.Workload{NodeID: "sidecar~127.0.0.3~ratings-v1.default~default.svc.cluster.local", Name: "ratings-v1",
		Namespace: "default", WorkloadName: "ratings-v1", Labels: map[string]string{"app": "ratings"}})

	t.Run("inbound", func(t *testing.T) {
		app := &headerRecorder{}
		e := newEnvWith(t, func(o *forward.Options) { o.PeerMetadata = ratings }, routes(toCluster("inbound|9080||")), static("inbound|9080||", backend(t, app.serve)))
		e.direction = "inbound"
		req, _ := http.NewRequest(http.MethodGet, e.url+"/", nil)
		req.Header.Set(peermeta.HeaderMetadata, reviews.Value)
		req.Header.Set(peermeta.HeaderID, reviews.ID)
		r := e.do(e.h1, req)
		info := e.info()
		if r.code != 200 || info.Source.Workload != "reviews-v1" || info.Source.App != "reviews" || info.Source.CanonicalService != "reviews-canon" {
			t.Fatalf("got %d, source %+v", r.code, info.Source)
		}
		if app.got().Get(peermeta.HeaderMetadata) != "" || app.got().Get(peermeta.HeaderID) != "" {
			t.Errorf("the app saw the exchange: %v", app.got())
		}
		if r.hdr.Get(peermeta.HeaderMetadata) != ratings.Value || r.hdr.Get(peermeta.HeaderID) != ratings.ID {
			t.Errorf("the client's sidecar did not get this workload's metadata: %v", r.hdr)
		}
		// A value that is not metadata labels nothing and breaks nothing.
		req, _ = http.NewRequest(http.MethodGet, e.url+"/", nil)
		req.Header.Set(peermeta.HeaderMetadata, "%%not base64")
		if r := e.do(e.h1, req); r.code != 200 {
			t.Fatalf("garbage metadata: %d", r.code)
		}
		if info := e.info(); info.Source.Workload != "" || app.got().Get(peermeta.HeaderMetadata) != "" {
			t.Fatalf("garbage metadata: source %+v, app saw %v", info.Source, app.got())
		}
	})
	t.Run("outbound", func(t *testing.T) {
		app := &headerRecorder{resp: http.Header{peermeta.HeaderMetadata: {reviews.Value}, peermeta.HeaderID: {reviews.ID}}}
		addr := backend(t, app.serve)
		mesh := static("reviews", addr)
		mesh.Info.ServiceHost = "reviews.default.svc.cluster.local"
		external := static("PassthroughCluster", addr)
		self := encode(t, peermeta.Workload{NodeID: "sidecar~127.0.0.1~productpage-v1.default~default.svc.cluster.local", WorkloadName: "productpage-v1"})
		rc := routes(toCluster("reviews"))
		rc.VirtualHosts = append([]resource.VirtualHost{{Name: "ext", Domains: []string{"example.com"}, Routes: []resource.Route{toCluster("PassthroughCluster")}}}, rc.VirtualHosts...)
		e := newEnvWith(t, func(o *forward.Options) { o.PeerMetadata = self }, rc, mesh, external)
		// The client's own header is replaced by this workload's.
		req, _ := http.NewRequest(http.MethodGet, e.url+"/", nil)
		req.Host = "reviews:9080"
		req.Header.Set(peermeta.HeaderMetadata, ratings.Value)
		r := e.do(e.h1, req)
		info := e.info()
		if app.got().Get(peermeta.HeaderMetadata) != self.Value || app.got().Get(peermeta.HeaderID) != self.ID {
			t.Errorf("upstream got %v, want this workload's metadata", app.got())
		}
		if r.code != 200 || r.hdr.Get(peermeta.HeaderMetadata) != "" || info.Destination.CanonicalService != "reviews-canon" || info.Destination.Workload != "reviews-v1" {
			t.Fatalf("got %d %v, destination %+v", r.code, r.hdr, info.Destination)
		}
		req, _ = http.NewRequest(http.MethodGet, e.url+"/", nil)
		req.Host = "example.com"
		if r := e.do(e.h1, req); r.code != 200 || app.got().Get(peermeta.HeaderMetadata) != "" {
			t.Fatalf("a service outside the mesh got the metadata: %d %v", r.code, app.got())
		}
		e.info()
	})
}
