package tracing

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/testutil/telemetrytest"
)

// TestExportToCollector sends spans to a real OpenTelemetry Collector over OTLP/gRPC and
// OTLP/HTTP and reads back what it stored: the parent/child tree, kinds, the resource's
// service.name and the attributes survive the trip.
func TestExportToCollector(t *testing.T) {
	col := telemetrytest.StartCollector(t, "127.0.101.1")
	grpcSink, err := NewOTLPGRPC(col.GRPCAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer grpcSink.Close()
	for _, tc := range []struct {
		name string
		sink Sink
	}{
		{"grpc", grpcSink},
		{"http", NewOTLPHTTP(col.HTTPURL, http.Header{"X-Tenant": {"t1"}}, 5*time.Second)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			node := Node{ID: "sidecar~127.0.0.1~productpage-v1.default~default.svc.cluster.local", ServiceName: "productpage." + tc.name,
				Namespace: "default", CanonicalService: "productpage", MeshID: "cluster.local"}
			b := NewBatcher(&node, tc.sink, BatchOptions{FlushEvery: 50 * time.Millisecond})
			tr := New(node, b)
			all := &Settings{Sampling: Sampling{Random: 100, Client: 100, Overall: 100}}
			h := hdr("x-request-id", uuid4)
			client := tr.Start(h, StartOptions{Kind: KindClient, Operation: "reviews.default.svc.cluster.local:9080/*", Settings: all, Internal: true, Scheme: "http"})
			server := tr.Start(h, StartOptions{Kind: KindServer, Operation: "reviews.default.svc.cluster.local:9080/*", Settings: all, Internal: true, Scheme: "http"})
			server.Finish(finished(h, 200, 0, ""))
			client.Finish(finished(h, 200, 0, ""))
			b.Close(context.Background())
			if exported, dropped, failed := b.Counters(); exported != 2 || dropped != 0 || failed != 0 {
				t.Fatalf("exported %d, dropped %d, failed %d", exported, dropped, failed)
			}
			trace := client.span.TraceID.String()
			spans := col.WaitSpans(t, 10*time.Second, func(s []telemetrytest.Span) bool {
				n := 0
				for _, x := range s {
					if x.TraceID == trace {
						n++
					}
				}
				return n == 2
			})
			var c, s telemetrytest.Span
			for _, x := range spans {
				if x.TraceID != trace {
					continue
				}
				if x.Kind == 3 {
					c = x
				} else {
					s = x
				}
			}
			if c.SpanID != client.span.SpanID.String() || s.ParentSpanID != c.SpanID || c.ParentSpanID != "" || s.Kind != 2 {
				t.Fatalf("tree as stored: client %+v, server %+v", c, s)
			}
			if c.Service != node.ServiceName || c.Name != "reviews.default.svc.cluster.local:9080/*" ||
				c.Attrs["http.status_code"] != "200" || c.Attrs["istio.canonical_service"] != "productpage" || c.Attrs["guid:x-request-id"] == "" {
				t.Fatalf("client span as stored: %+v", c)
			}
		})
	}
}
