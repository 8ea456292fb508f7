package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/testutil"
	"github.com/lucid-mesh/lucid/internal/testutil/meshtest"
	"github.com/lucid-mesh/lucid/internal/testutil/telemetrytest"
)

// The telemetry mesh (127.0.123.x): a gateway in front of productpage → reviews →
// ratings, each behind its sidecar, the apps passing the trace headers on as Istio asks
// applications to. A real OpenTelemetry Collector (the mesh config's tracing provider)
// receives the spans; a real Prometheus scrapes every proxy.
const (
	telGateway     = "127.0.123.10"
	telProductpage = "127.0.123.1"
	telReviews     = "127.0.123.2"
	telRatings     = "127.0.123.3"
	telCollector   = "127.0.123.200"
	telPrometheus  = "127.0.123.201"
	ratingsBody    = "ratings ok\n"
)

// bookinfoWorkload is the WorkloadEntry of app's v1 workload at ip, its app at appIP.
func bookinfoWorkload(app, ip, appIP string) string {
	return `
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ` + app + `-v1, annotations: {lucid.dev/app-address: ` + appIP + `}}
spec: {address: ` + ip + `, labels: {app: ` + app + `, version: v1}}
---`
}

func telemetryFiles(collectorPort string) map[string]string {
	return map[string]string{
		"services.yaml": meshtest.HTTPService("productpage") + meshtest.HTTPService("reviews") + meshtest.HTTPService("ratings") + `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: otel-collector, namespace: observability}
spec:
  hosts: [otel-collector.observability.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 4317, name: grpc-otlp, protocol: GRPC}]
  endpoints: [{address: ` + telCollector + `, ports: {grpc-otlp: ` + collectorPort + `}}]
`,
		"workloads.yaml": bookinfoWorkload("productpage", telProductpage, "127.0.123.101") + bookinfoWorkload("reviews", telReviews, "127.0.123.102") +
			bookinfoWorkload("ratings", telRatings, "127.0.123.103") + `
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: istio-ingressgateway, namespace: istio-system, annotations: {lucid.dev/proxy: router}}
spec: {address: ` + telGateway + `, labels: {istio: ingressgateway, app: istio-ingressgateway}}
`,
		"gateway.yaml": `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ingress, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 8080, name: http, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: productpage}
spec:
  hosts: ["*"]
  gateways: [istio-system/ingress]
  http: [{route: [{destination: {host: productpage.default.svc.cluster.local, port: {number: 9080}}}]}]
`,
	}
}

// telemetryMeshConfig has the Collector as the tracing provider and an access-log
// provider "audit" writing to auditLog.
func telemetryMeshConfig(auditLog string) string {
	return `
enableTracing: true
defaultConfig:
  tracing: {sampling: 100}
defaultProviders:
  tracing: [otel]
extensionProviders:
- name: otel
  opentelemetry: {service: observability/otel-collector.observability.svc.cluster.local, port: 4317}
- name: audit
  envoyFileAccessLog: {path: ` + auditLog + `}
`
}

// telemetryAPI has the mesh log its failures (5xx) to the audit provider, and ratings
// turn its inbound side's logging off: only reviews' calls to ratings that fail are
// logged. Of the metrics, istio_request_bytes is off and the server side reports
// istio_requests_total without request_protocol.
const telemetryAPI = `
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: istio-system}
spec:
  accessLogging:
  - providers: [{name: audit}]
    filter: {expression: "response.code >= 500"}
  metrics:
  - providers: [{name: prometheus}]
    overrides:
    - match: {metric: REQUEST_SIZE}
      disabled: true
    - match: {metric: REQUEST_COUNT, mode: SERVER}
      tagOverrides: {request_protocol: {operation: REMOVE}}
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: ratings}
spec:
  selector: {matchLabels: {app: ratings}}
  accessLogging: [{match: {mode: SERVER}, disabled: true}]
`

// traceHeaders are the headers Istio asks applications to copy from the request they
// serve to the requests they make.
var traceHeaders = []string{"X-Request-Id", "Traceparent", "Tracestate", "X-B3-Traceid", "X-B3-Spanid",
	"X-B3-Parentspanid", "X-B3-Sampled", "X-B3-Flags", "B3"}

// startChainApp serves an app on addr:9080 that calls next (through its sidecar's
// explicit proxy at sidecar:15001) with the trace headers and the query passed on, and
// answers 200 whatever next answered; without next it answers ratingsBody, or 500 when
// the query has fail.
func startChainApp(t *testing.T, addr, sidecar, next string) {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(addr, "9080"))
	if err != nil {
		t.Fatal(err)
	}
	var c *http.Client
	if next != "" {
		c = (&meshtest.Mesh{}).Client(sidecar)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if next == "" {
			if r.URL.Query().Has("fail") {
				http.Error(w, "ratings failed on purpose", http.StatusInternalServerError)
				return
			}
			_, _ = io.WriteString(w, ratingsBody)
			return
		}
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, next+"?"+r.URL.RawQuery, nil)
		for _, k := range traceHeaders {
			if v := r.Header.Values(k); len(v) > 0 {
				req.Header[k] = v
			}
		}
		resp, err := c.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Fprintf(w, "%s via %d %s", addr, resp.StatusCode, b)
	})}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("app %s: %v", addr, err)
		}
	}()
	t.Cleanup(func() {
		if c != nil {
			c.CloseIdleConnections()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
}

// A request through gateway → productpage → reviews → ratings yields one trace with the
// expected tree in a real Collector; a downstream traceparent is continued; a request
// its parent sampled out makes no span; a real Prometheus scraping the proxies answers
// Istio's standard queries with the values the traffic implies, source labels from the
// metadata exchange included.
func TestTelemetryTracesAndMetrics(t *testing.T) {
	col := telemetrytest.StartCollector(t, telCollector)
	_, collectorPort, _ := net.SplitHostPort(col.GRPCAddr)
	startChainApp(t, "127.0.123.103", telRatings, "")
	startChainApp(t, "127.0.123.102", telReviews, "http://ratings.default.svc.cluster.local:9080/ratings")
	startChainApp(t, "127.0.123.101", telProductpage, "http://reviews.default.svc.cluster.local:9080/reviews")
	auditLog := filepath.Join(t.TempDir(), "audit.log")
	files := telemetryFiles(collectorPort)
	files["telemetry.yaml"] = telemetryAPI
	m := meshtest.StartWith(t, meshtest.Options{MeshConfig: telemetryMeshConfig(auditLog)}, files, []meshtest.Workload{
		{Name: "productpage-v1", IP: telProductpage, Labels: map[string]string{"app": "productpage", "version": "v1"}},
		{Name: "reviews-v1", IP: telReviews, Labels: map[string]string{"app": "reviews", "version": "v1"}},
		{Name: "ratings-v1", IP: telRatings, Labels: map[string]string{"app": "ratings", "version": "v1"}},
		{Name: "istio-ingressgateway", Namespace: "istio-system", IP: telGateway, Router: true,
			Labels: map[string]string{"istio": "ingressgateway", "app": "istio-ingressgateway"}},
	})
	prom := telemetrytest.StartPrometheus(t, telPrometheus, []string{
		telGateway + ":15020", telProductpage + ":15020", telReviews + ":15020", telRatings + ":15020",
	}, "/stats/prometheus", time.Second)

	c := &http.Client{Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	var ok, failed int
	send := func(query string, h http.Header) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+telGateway+":8080/productpage"+query, nil)
		req.Host = "bookinfo.example.com"
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET /productpage%s: %v\nlogs:\n%s", query, err, m.Logs.String())
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), "via 200") {
			t.Fatalf("GET /productpage%s: %d %q (x-lucid-error %q)", query, resp.StatusCode, b, resp.Header.Get("X-Lucid-Error"))
		}
		if resp.Header.Get("X-Envoy-Peer-Metadata") != "" {
			t.Errorf("the metadata exchange reached the client: %v", resp.Header)
		}
		if strings.Contains(query, "fail") {
			failed++
		} else {
			ok++
		}
	}

	// 1. A client's sampled traceparent is continued through every hop.
	const traceID, clientSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	send("", http.Header{"Traceparent": {"00-" + traceID + "-" + clientSpan + "-01"}})
	spans := col.WaitSpans(t, 30*time.Second, func(s []telemetrytest.Span) bool { return len(telemetrytest.InTrace(s, traceID)) >= 7 })
	checkTree(t, telemetrytest.InTrace(spans, traceID), clientSpan)

	// 2. A request its client sampled out makes no span; one sent after it is traced, and
	// once its spans are in, every proxy has exported what it had before.
	const outID, afterID = "0af7651916cd43dd8448eb211c80319c", "1af7651916cd43dd8448eb211c80319c"
	send("", http.Header{"Traceparent": {"00-" + outID + "-b7ad6b7169203331-00"}})
	send("", http.Header{"Traceparent": {"00-" + afterID + "-b7ad6b7169203331-01"}})
	spans = col.WaitSpans(t, 30*time.Second, func(s []telemetrytest.Span) bool { return len(telemetrytest.InTrace(s, afterID)) >= 7 })
	if n := len(telemetrytest.InTrace(spans, outID)); n != 0 {
		t.Errorf("a sampled-out request made %d spans", n)
	}

	// 3. Metrics: 6 more good requests and 4 whose ratings call fails (reviews still answers).
	for i := range 10 {
		if i%5 < 3 {
			send("", nil)
		} else {
			send("?fail=1", nil)
		}
	}
	total := ok + failed
	waitQuery(t, prom, `sum(istio_requests_total{reporter="destination",destination_workload="ratings-v1"})`, float64(total))
	waitQuery(t, prom, `sum(istio_requests_total{reporter="source",source_workload="reviews-v1"})`, float64(total))

	// Istio's dashboard query: success rate per destination workload.
	rate := queryByLabel(t, prom, `sum by (destination_workload) (istio_requests_total{reporter="destination",response_code!~"5.."})
		/ sum by (destination_workload) (istio_requests_total{reporter="destination"})`, "destination_workload")
	want := map[string]float64{"productpage-v1": 1, "reviews-v1": 1, "ratings-v1": float64(ok) / float64(total)}
	for w, v := range want {
		if got, found := rate[w]; !found || got != v {
			t.Errorf("success rate of %s = %v (found %v), want %v; all: %v", w, got, found, v, rate)
		}
	}
	// Source labels from the metadata exchange, seen by each destination.
	for _, q := range []struct {
		query string
		want  float64
	}{
		{`sum(istio_requests_total{reporter="source",source_workload="istio-ingressgateway",destination_workload="productpage-v1",destination_app="productpage",response_code="200"})`, float64(total)},
		{`sum(istio_requests_total{reporter="destination",destination_workload="productpage-v1",source_workload="istio-ingressgateway",source_workload_namespace="istio-system",source_app="istio-ingressgateway"})`, float64(total)},
		{`sum(istio_requests_total{reporter="destination",destination_workload="reviews-v1",source_workload="productpage-v1",source_app="productpage",source_version="v1",source_canonical_service="productpage",source_canonical_revision="v1",source_cluster="Kubernetes",connection_security_policy="none"})`, float64(total)},
		{`sum(istio_requests_total{reporter="destination",destination_workload="ratings-v1",source_workload="reviews-v1",response_code="500",response_flags="-"})`, float64(failed)},
		{`sum(istio_requests_total{reporter="source",source_workload="reviews-v1",destination_workload="ratings-v1",destination_app="ratings",destination_version="v1",destination_service="ratings.default.svc.cluster.local",response_code="500",connection_security_policy="unknown"})`, float64(failed)},
		{`sum(istio_response_bytes_sum{reporter="destination",destination_workload="ratings-v1",response_code="200"})`, float64(ok * len(ratingsBody))},
		{`sum(istio_request_duration_milliseconds_count{reporter="destination",destination_workload="ratings-v1"})`, float64(total)},
	} {
		// Each proxy is scraped on its own schedule: wait for its newest counts.
		waitQuery(t, prom, q.query, q.want)
	}
	// Every proxy counts the spans it exported, none dropped or lost.
	sent := queryByLabel(t, prom, `sum by (instance) (envoy_tracing_opentelemetry_spans_sent)`, "instance")
	for _, ip := range []string{telGateway, telProductpage, telReviews, telRatings} {
		if sent[ip+":15020"] < 2 {
			t.Errorf("%s exported %v spans, want at least the 2 traced requests'; all: %v", ip, sent[ip+":15020"], sent)
		}
	}
	if lost := query(t, prom, `sum(envoy_tracing_opentelemetry_spans_dropped) + sum(envoy_tracing_opentelemetry_spans_failed)`); lost != 0 {
		t.Errorf("%v spans dropped or failed", lost)
	}
	// The Telemetry API's metrics overrides, as Prometheus sees them: a disabled metric
	// is absent, a removed label is gone on the side it was removed from only.
	for _, q := range []struct {
		query string
		want  float64
	}{
		{`count(istio_request_bytes_count) or vector(0)`, 0},
		{`count(istio_requests_total{reporter="destination",request_protocol!=""}) or vector(0)`, 0},
		{`sum(istio_requests_total{reporter="destination",destination_workload="ratings-v1"})`, float64(total)},
		{`sum(istio_requests_total{reporter="source",source_workload="reviews-v1",request_protocol="http"})`, float64(total)},
		{`sum(istio_request_duration_milliseconds_count{reporter="destination",destination_workload="ratings-v1",request_protocol="http"})`, float64(total)},
	} {
		if got := query(t, prom, q.query); got != q.want {
			t.Errorf("%s = %v, want %v", q.query, got, q.want)
		}
	}
	// The Telemetry API's access log: exactly the failed calls, each logged once, by
	// reviews' outbound side (ratings' inbound side turned off; every 2xx filtered out).
	checkAuditLog(t, auditLog, failed)
	// p99 latency per destination: loopback requests fall in Istio's low buckets.
	p99 := queryByLabel(t, prom, `histogram_quantile(0.99, sum by (le, destination_workload) (istio_request_duration_milliseconds_bucket{reporter="destination"}))`, "destination_workload")
	for _, w := range []string{"productpage-v1", "reviews-v1", "ratings-v1"} {
		if v, found := p99[w]; !found || v <= 0 || v > 1000 {
			t.Errorf("p99 of %s = %v ms (found %v), want within (0, 1000]", w, v, found)
		}
	}
}

// checkTree wants, under the client's span, gateway (server) → gateway upstream
// (client) → productpage inbound (server) → productpage outbound (client) → reviews inbound → reviews outbound →
// ratings inbound, one x-request-id throughout.
func checkTree(t *testing.T, spans []telemetrytest.Span, clientSpan string) {
	t.Helper()
	if len(spans) != 7 {
		t.Fatalf("%d spans in the trace, want 7: %+v", len(spans), spans)
	}
	want := []struct {
		service string
		kind    int
		cluster string
	}{
		{"istio-ingressgateway.istio-system", 2, "outbound|9080||productpage.default.svc.cluster.local"},
		{"istio-ingressgateway.istio-system", 3, "outbound|9080||productpage.default.svc.cluster.local"},
		{"productpage.default", 2, "inbound|9080||"},
		{"productpage.default", 3, "outbound|9080||reviews.default.svc.cluster.local"},
		{"reviews.default", 2, "inbound|9080||"},
		{"reviews.default", 3, "outbound|9080||ratings.default.svc.cluster.local"},
		{"ratings.default", 2, "inbound|9080||"},
	}
	parent := clientSpan
	requestID := spans[0].Attrs["guid:x-request-id"]
	for i, w := range want {
		var found *telemetrytest.Span
		for j := range spans {
			if spans[j].ParentSpanID == parent {
				found = &spans[j]
			}
		}
		if found == nil {
			t.Fatalf("hop %d (%s): no span whose parent is %s; spans: %+v", i, w.service, parent, spans)
		}
		s := found
		if s.Service != w.service || s.Kind != w.kind || s.Attrs["upstream_cluster"] != w.cluster ||
			s.Attrs["http.method"] != "GET" || s.Attrs["http.status_code"] != "200" || s.Attrs["response_flags"] != "-" ||
			s.Attrs["istio.mesh_id"] != "cluster.local" || s.Attrs["node_id"] == "" || s.Attrs["guid:x-request-id"] != requestID {
			t.Errorf("hop %d: got %+v, want service %s kind %d upstream_cluster %s", i, s, w.service, w.kind, w.cluster)
		}
		parent = s.SpanID
	}
}

func query(t *testing.T, p *telemetrytest.Prometheus, q string) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := p.Query(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 1 {
		t.Fatalf("%s: %d samples, want 1: %+v", q, len(s), s)
	}
	return s[0].Value
}

func queryByLabel(t *testing.T, p *telemetrytest.Prometheus, q, label string) map[string]float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := p.Query(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, x := range s {
		out[x.Labels[label]] = x.Value
	}
	return out
}

// waitQuery polls q until it answers want (the scrapes catch up with the traffic).
func waitQuery(t *testing.T, p *telemetrytest.Prometheus, q string, want float64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last []telemetrytest.Sample
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, err := p.Query(ctx, q)
		cancel()
		if err == nil && len(s) == 1 && s[0].Value == want {
			return
		}
		last = s
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: got %+v, want %v", q, last, want)
}

// checkAuditLog wants n lines in the audit access log, each a 500 from ratings seen by
// reviews' outbound side.
func checkAuditLog(t *testing.T, path string, n int) {
	t.Helper()
	var lines []string
	_ = testutil.Poll(10*time.Second, func() error { // the count is checked below
		b, _ := os.ReadFile(path)
		lines = strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		if len(b) == 0 {
			lines = nil
		}
		if len(lines) < n {
			return errors.New("too few lines")
		}
		return nil
	})
	if len(lines) != n {
		t.Fatalf("audit log has %d lines, want %d:\n%s", len(lines), n, strings.Join(lines, "\n"))
	}
	for _, l := range lines {
		if !strings.Contains(l, `"GET /ratings?fail=1 HTTP/1.1" 500 `) || !strings.Contains(l, "outbound|9080||ratings.default.svc.cluster.local") {
			t.Errorf("audit log line %q: want reviews' failed call to ratings", l)
		}
	}
}
