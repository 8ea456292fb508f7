package status

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func serve(t *testing.T, s *Server, method, path, remote string) (int, string) {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	r.RemoteAddr = remote
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, r)
	b, _ := io.ReadAll(w.Result().Body)
	return w.Code, string(b)
}

func TestControlEndpoints(t *testing.T) {
	var quits, drains int
	s, err := NewServer(Options{Ready: func() error { return nil }, Quit: func() { quits++ }, Drain: func() { drains++ }})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		method, path, remote string
		code                 int
		body                 string
	}{
		{"POST", "/quitquitquit", "10.0.0.9:5555", 403, "Only requests from localhost are allowed\n"},
		{"POST", "/drain", "10.0.0.9:5555", 403, "Only requests from localhost are allowed\n"},
		{"GET", "/quitquitquit", "127.0.0.1:5555", 405, "Method Not Allowed\n"},
		{"GET", "/drain", "[::1]:5555", 405, "Method Not Allowed\n"},
		{"POST", "/drain", "[::1]:5555", 200, "OK"},
		{"POST", "/quitquitquit", "127.0.91.1:5555", 200, "OK"},
		{"GET", "/debug/pprof/", "127.0.0.1:5555", 404, "404 page not found\n"}, // profiling off
		{"GET", "/app-health/x/livez", "10.0.0.9:5555", 400, "app prober config does not exists for /app-health/x/livez\n"},
	}
	for _, tc := range tests {
		if code, body := serve(t, s, tc.method, tc.path, tc.remote); code != tc.code || body != tc.body {
			t.Errorf("%s %s from %s: %d %q, want %d %q", tc.method, tc.path, tc.remote, code, body, tc.code, tc.body)
		}
	}
	if quits != 1 || drains != 1 {
		t.Fatalf("quit %d, drain %d", quits, drains)
	}
	p, _ := NewServer(Options{Ready: func() error { return nil }, Profiling: true})
	if code, _ := serve(t, p, "GET", "/debug/pprof/", "127.0.0.1:1"); code != 200 {
		t.Fatalf("pprof with profiling: %d", code)
	}
	if code, _ := serve(t, p, "GET", "/debug/pprof/", "10.1.1.1:1"); code != 403 {
		t.Fatalf("pprof from afar: %d", code)
	}
}

func TestParsePrometheusAnnotations(t *testing.T) {
	tests := []struct{ in, url, err string }{
		{``, "", ""},
		{`{"scrape":"false","port":"8080"}`, "", ""},
		{`{"scrape":"true"}`, "http://127.0.91.2:80/metrics", ""},
		{`{"scrape":"true","path":"stats","port":"9090"}`, "http://127.0.91.2:9090/stats", ""},
		{`{"port":"15020"}`, "", "ISTIO_PROMETHEUS_ANNOTATIONS: port: the app's metrics cannot be on the status port 15020"},
		{`{"port":"15090"}`, "", "ISTIO_PROMETHEUS_ANNOTATIONS: port: 15090 is Istio's reserved port (Envoy Prometheus)"},
		{`{"port":"http"}`, "", `ISTIO_PROMETHEUS_ANNOTATIONS: port: "http" is not a port number`},
		{`{"port":8080}`, "", "ISTIO_PROMETHEUS_ANNOTATIONS: json: cannot unmarshal number into Go struct field .port of type string"},
	}
	for _, tc := range tests {
		a, err := ParsePrometheusAnnotations(tc.in, "127.0.91.2", 15020)
		gotErr, gotURL := "", ""
		if err != nil {
			gotErr = err.Error()
		}
		if a != nil {
			gotURL = a.URL
		}
		if gotURL != tc.url || gotErr != tc.err {
			t.Errorf("%s: got %q %q, want %q %q", tc.in, gotURL, gotErr, tc.url, tc.err)
		}
	}
}

func FuzzParsePrometheusAnnotations(f *testing.F) {
	f.Add(`{"scrape":"true","path":"/m","port":"8080"}`)
	f.Add(`{"port":"0"}`)
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParsePrometheusAnnotations(s, "127.0.0.1", 15020)
		if err == nil && a != nil && !strings.HasPrefix(a.URL, "http://127.0.0.1:") {
			t.Fatalf("bad URL %q", a.URL)
		}
	})
}

// The merged scrape: the sidecar's metrics, then the app's; an app that fails leaves
// the sidecar's part intact and is counted.
func TestMetricsMerge(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.91.40:0")
	if err != nil {
		t.Fatal(err)
	}
	var failing atomic.Bool
	var gotUA atomic.Value
	app := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotUA.Store(r.UserAgent())
		if failing.Load() {
			http.Error(w, "boom", 500)
			return
		}
		_, _ = io.WriteString(w, "app_up 1")
	}), ReadHeaderTimeout: time.Second}
	go func() { _ = app.Serve(ln) }()
	defer app.Close()

	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "sidecar_thing_total", Help: "x"})
	reg.MustRegister(c)
	c.Inc()
	s, err := NewServer(Options{Ready: func() error { return nil }, Metrics: reg, Registerer: reg,
		AppMetrics: &AppScrape{URL: "http://" + ln.Addr().String() + "/metrics"}})
	if err != nil {
		t.Fatal(err)
	}
	scrape := func() (string, http.Header) {
		r := httptest.NewRequest("GET", "/stats/prometheus", nil)
		r.Header.Set("User-Agent", "Prometheus/3.0")
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, r)
		if w.Code != 200 {
			t.Fatalf("scrape: %d", w.Code)
		}
		return w.Body.String(), w.Header()
	}
	body, h := scrape()
	if !strings.Contains(body, "sidecar_thing_total 1\n") || !strings.HasSuffix(body, "\napp_up 1") || gotUA.Load() != "Prometheus/3.0" {
		t.Fatalf("merged scrape:\n%s", body)
	}
	if h.Get("Content-Type") != "text/plain; version=0.0.4; charset=utf-8" {
		t.Fatal(h.Get("Content-Type"))
	}
	failing.Store(true)
	_, _ = scrape()
	body, _ = scrape()
	if strings.Contains(body, "app_up") || !strings.Contains(body, "sidecar_thing_total 1\n") ||
		!strings.Contains(body, `istio_agent_scrape_failures_total{type="application"} 1`) {
		t.Fatalf("scrape with a failing app:\n%s", body)
	}
}

func TestWait(t *testing.T) {
	var calls, mode atomic.Int32 // mode 0: ready on the second call; 1: draining forever
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if mode.Load() == 1 {
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
		if calls.Add(1) == 1 {
			http.Error(w, "config not received", http.StatusServiceUnavailable)
		}
	}))
	ln, err := net.Listen("tcp", "127.0.91.41:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	var out strings.Builder
	if err := Wait(context.Background(), srv.URL+"/healthz/ready", 10*time.Second, 10*time.Millisecond, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "The sidecar is ready.") {
		t.Fatal(out.String())
	}
	mode.Store(1)
	err = Wait(context.Background(), srv.URL+"/healthz/ready", 50*time.Millisecond, 10*time.Millisecond, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "last answer: 503 draining") {
		t.Fatalf("timeout error: %v", err)
	}
}
