package forward_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/peermeta"
	"github.com/lucid-mesh/lucid/internal/dataplane/stats"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
	"github.com/lucid-mesh/lucid/internal/dataplane/tracing"
	"github.com/lucid-mesh/lucid/internal/testutil/telemetrytest"
)

// BenchmarkTelemetry is one outbound hop (loopback client → proxy → upstream answering
// 1 KiB) with no telemetry beside Istio's metrics with the metadata exchange, and with
// tracing at 1 % and 100 % sampling exporting OTLP/gRPC to a real OpenTelemetry
// Collector. cpu-ns/op is this process's CPU time (user + system: client, proxy,
// upstream and the span exporter) per request, the figure the telemetry's cost is
// judged by:
//
//	go test -run '^$' -bench Telemetry -count 6 ./internal/dataplane/forward/ | tee new.txt; benchstat new.txt
func BenchmarkTelemetry(b *testing.B) {
	payload := strings.Repeat("x", 1024)
	self, err := encodeBench(peermeta.Workload{NodeID: "sidecar~127.0.0.1~productpage-v1.default~default.svc.cluster.local",
		Name: "productpage-v1", Namespace: "default", WorkloadName: "productpage-v1", Labels: map[string]string{"app": "productpage", "version": "v1"}})
	if err != nil {
		b.Fatal(err)
	}
	peer, err := encodeBench(peermeta.Workload{NodeID: "sidecar~127.0.0.2~reviews-v1.default~default.svc.cluster.local",
		Name: "reviews-v1", Namespace: "default", WorkloadName: "reviews-v1", Labels: map[string]string{"app": "reviews", "version": "v1"}})
	if err != nil {
		b.Fatal(err)
	}
	up := backend(b, func(w http.ResponseWriter, r *http.Request) {
		w.Header()[peermeta.HeaderMetadata] = []string{peer.Value}
		w.Header()[peermeta.HeaderID] = []string{peer.ID}
		_, _ = io.WriteString(w, payload)
	})
	col := telemetrytest.StartCollector(b, "127.0.123.60")
	for _, tc := range []struct {
		name    string
		metrics bool
		random  float64 // tracing's random sampling; <0: no tracing
	}{
		{"none", false, -1},
		{"metrics", true, -1},
		{"metrics+tracing-1pct", true, 1},
		{"metrics+tracing-100pct", true, 100},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var ps *tracing.Providers
			if tc.random >= 0 {
				ps = tracing.NewProviders(tracing.Node{ID: "sidecar~127.0.0.1~productpage-v1.default~default.svc.cluster.local",
					ServiceName: "productpage.default"}, func(string) (string, error) { return col.GRPCAddr, nil }, tracing.BatchOptions{})
				defer ps.Close(context.Background())
			}
			st := stats.New(streaminfo.Peer{Workload: "productpage-v1", Namespace: "default", App: "productpage", Version: "v1"})
			cl := static("c", up)
			cl.Info.ServiceHost = "reviews.default.svc.cluster.local"
			e := newEnvWith(b, func(o *forward.Options) {
				if tc.metrics {
					o.Observers = append(o.Observers, st.Record)
					o.PeerMetadata = self
				}
				o.Tracers = ps
			}, routes(decoratedRoute("c")), cl)
			if tc.random >= 0 {
				e.hcm = tracingHCM(tc.random)
			}
			var before, after syscall.Rusage
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
			e.roundTrips(b)
			if ps != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				ps.Flush(ctx) // the export's CPU belongs to the requests
				cancel()
			}
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
			cpu := time.Duration(after.Utime.Nano()-before.Utime.Nano()) + time.Duration(after.Stime.Nano()-before.Stime.Nano())
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
			if ps != nil {
				ps.EmitCounters(func(name string, v uint64) {
					if strings.HasSuffix(name, "dropped") || strings.HasSuffix(name, "failed") {
						b.ReportMetric(float64(v)/float64(b.N), strings.TrimPrefix(name, "tracing.opentelemetry.")+"/op")
					}
				})
			}
		})
	}
}

func encodeBench(w peermeta.Workload) (forward.PeerMetadata, error) {
	id, v, err := peermeta.Encode(w)
	return forward.PeerMetadata{ID: id, Value: v}, err
}

// roundTrips sends b.N GET requests through e and reads the answers, timed.
func (e *env) roundTrips(b *testing.B) {
	b.Helper()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		req, _ := http.NewRequest(http.MethodGet, e.url+"/", nil)
		req.Host = "svc:9080"
		resp, err := e.h1.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	b.StopTimer()
}
