package demoapp

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lucid-mesh/lucid/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // "" means valid
	}{
		{"ok", Config{Listen: "127.0.0.1:9080", Name: "reviews", Calls: []string{"http://ratings:9080/"}, Proxy: "http://127.0.0.1:15001"}, ""},
		{"no name", Config{Listen: "127.0.0.1:9080"}, "--name is required"},
		{"no listen", Config{Name: "a"}, "--listen is required"},
		{"listen without port", Config{Name: "a", Listen: "127.0.0.1"}, `--listen "127.0.0.1"`},
		{"listen without host", Config{Name: "a", Listen: ":9080"}, "give an address"},
		{"listen bad port", Config{Name: "a", Listen: "127.0.0.1:99999"}, "port must be a number from 1 to 65535"},
		{"relative call", Config{Name: "a", Listen: "127.0.0.1:1", Calls: []string{"/ratings"}}, `--call "/ratings": want an absolute http:// URL`},
		{"https call", Config{Name: "a", Listen: "127.0.0.1:1", Calls: []string{"https://x/"}}, "want an absolute http:// URL"},
		{"bad proxy", Config{Name: "a", Listen: "127.0.0.1:1", Proxy: "127.0.0.1:15001"}, "--proxy"},
		{"fail rate", Config{Name: "a", Listen: "127.0.0.1:1", FailRate: 2}, "--fail-rate 2: must be between 0 and 1"},
		{"negative delay", Config{Name: "a", Listen: "127.0.0.1:1", Delay: -time.Second}, "--delay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// serve starts an app on a fresh loopback port and returns its address.
func serve(t *testing.T, cfg Config) string {
	t.Helper()
	_, base := startApp(t, cfg)
	return strings.TrimPrefix(base, "http://")
}

// proxy is a loopback HTTP forward proxy standing in for a sidecar's port 15001: it maps
// the absolute URI's host to a real address, or answers like Envoy's UH when the host is
// not mapped. It records the requests it saw.
type proxy struct {
	routes map[string]string // "reviews:9080" -> 127.0.0.1:port
	mu     sync.Mutex
	seen   []*http.Request
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.seen = append(p.seen, r.Clone(context.Background()))
	p.mu.Unlock()
	addr, ok := p.routes[r.Host]
	if !ok || !r.URL.IsAbs() {
		w.Header().Set("x-lucid-error", `UH: subset "v3" of reviews.default.svc.cluster.local selects 0 of 3 endpoints`)
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "no healthy upstream")
		return
	}
	out, _ := http.NewRequestWithContext(r.Context(), r.Method, "http://"+addr+r.URL.Path, nil)
	out.Header = r.Header.Clone()
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

func startProxy(t *testing.T, p *proxy) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

func get(t *testing.T, url string, hdr map[string]string) (int, Answer) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a Answer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatalf("decoding answer: %v", err)
	}
	return resp.StatusCode, a
}

func TestCallsThroughProxy(t *testing.T) {
	reviews := serve(t, Config{Name: "reviews", Version: "v2"})
	p := &proxy{routes: map[string]string{"reviews:9080": reviews}}
	proxyURL := startProxy(t, p)
	productpage := serve(t, Config{Name: "productpage", Calls: []string{"http://reviews:9080/reviews"}, Proxy: proxyURL})

	status, a := get(t, "http://"+productpage+"/", map[string]string{"x-request-id": "req-1", "end-user": "jason"})
	if status != http.StatusOK {
		t.Fatalf("status = %d, want 200", status)
	}
	if a.Service != "productpage" || a.Version != "v1" || a.Path != "/" || a.RequestID != "req-1" {
		t.Errorf("answer = %+v, want productpage v1 at / with request id req-1", a)
	}
	if len(a.Calls) != 1 {
		t.Fatalf("calls = %+v, want one", a.Calls)
	}
	c := a.Calls[0]
	if c.URL != "http://reviews:9080/reviews" || c.Status != http.StatusOK || c.Error != "" {
		t.Errorf("call = %+v, want 200 from http://reviews:9080/reviews", c)
	}
	var callee Answer
	if err := json.Unmarshal(c.Answer, &callee); err != nil {
		t.Fatalf("callee answer %q: %v", c.Answer, err)
	}
	if callee.Service != "reviews" || callee.Version != "v2" || callee.Path != "/reviews" || callee.RequestID != "req-1" {
		t.Errorf("callee answer = %+v, want reviews v2 at /reviews with request id req-1", callee)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.seen) != 1 {
		t.Fatalf("proxy saw %d requests, want 1", len(p.seen))
	}
	if got := p.seen[0].URL.String(); got != "http://reviews:9080/reviews" {
		t.Errorf("proxy saw URI %q, want the absolute http://reviews:9080/reviews", got)
	}
	if got := p.seen[0].Header.Get("end-user"); got != "jason" {
		t.Errorf("end-user propagated = %q, want jason", got)
	}
}

func TestUpstreamErrorIsShown(t *testing.T) {
	proxyURL := startProxy(t, &proxy{routes: map[string]string{}})
	productpage := serve(t, Config{Name: "productpage", Calls: []string{"http://reviews:9080/v3"}, Proxy: proxyURL})

	status, a := get(t, "http://"+productpage+"/", nil)
	if status != http.StatusOK {
		t.Fatalf("status = %d, want 200 (productpage shows the failure, it does not fail)", status)
	}
	c := a.Calls[0]
	if c.Status != http.StatusServiceUnavailable || c.Body != "no healthy upstream" {
		t.Errorf("call = %+v, want 503 with body %q", c, "no healthy upstream")
	}
	if !strings.HasPrefix(c.LucidError, `UH: subset "v3"`) {
		t.Errorf("x_lucid_error = %q, want the proxy's explanation", c.LucidError)
	}
}

func TestCallTransportErrorIsShown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	_ = ln.Close() // nothing listens there any more: connection refused
	productpage := serve(t, Config{Name: "productpage", Calls: []string{"http://reviews:9080/"}, Proxy: dead})

	_, a := get(t, "http://"+productpage+"/", nil)
	if c := a.Calls[0]; c.Status != 0 || !strings.Contains(c.Error, "connection refused") {
		t.Errorf("call = %+v, want a connection refused error", c)
	}
}

func TestFailRateAndDelay(t *testing.T) {
	addr := serve(t, Config{Name: "ratings", FailRate: 1, Delay: 50 * time.Millisecond})
	start := time.Now()
	status, a := get(t, "http://"+addr+"/ratings", nil)
	if status != http.StatusInternalServerError || !strings.Contains(a.Error, "failing on purpose") {
		t.Errorf("got %d %+v, want 500 failing on purpose", status, a)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("answered after %v, want at least the 50ms delay", d)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, Config{Listen: addr, Name: "x"}, slog.New(slog.DiscardHandler)) }()
	testutil.Eventually(t, 5*time.Second, "the demo app listening on "+addr, func() bool {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil after cancel", err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		_ = c.Close()
		t.Fatalf("%s still listening after Run returned", addr)
	}
}

func TestRunListenError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = Run(context.Background(), Config{Listen: ln.Addr().String(), Name: "x"}, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Run = %v, want address already in use", err)
	}
}
