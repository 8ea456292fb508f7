package tracing

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// BenchmarkStart is the tracing work one request costs the proxy, apart from the export:
// the decision and, when sampled, the span's start, context injection and finish.
//
//	go test -run '^$' -bench Start -benchmem ./internal/dataplane/tracing/
func BenchmarkStart(b *testing.B) {
	for _, tc := range []struct {
		name   string
		random float64
	}{{"1pct", 1}, {"100pct", 100}} {
		b.Run(tc.name, func(b *testing.B) {
			sink := &memSink{}
			batch := NewBatcher(&Node{}, sink, BatchOptions{MaxQueue: 1 << 20, FlushEvery: time.Hour})
			defer batch.Close(context.Background())
			tr := New(Node{ID: "sidecar~127.0.0.1~productpage-v1.default~default.svc.cluster.local"}, batch)
			settings := &Settings{Sampling: Sampling{Random: tc.random, Client: 100, Overall: 100}}
			h := http.Header{"User-Agent": {"curl/8"}, "Accept": {"*/*"}}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				// As forward calls it: the request id handed in, the packed one handed back.
				a, _ := tr.StartRequest(uuid4, h, settings, StartOptions{Kind: KindClient, Operation: "reviews:9080/*", Internal: true, Scheme: "http"})
				if a != nil {
					a.Finish(finished(h, 200, 0, ""))
					clear(h)
					h["User-Agent"], h["Accept"] = []string{"curl/8"}, []string{"*/*"}
				}
				if i%4096 == 0 {
					batch.take() // keep the queue from filling: the export is not measured here
				}
			}
		})
	}
}
