package appprobe

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/lucid-mesh/lucid/internal/testutil"
)

// Test addresses: the app on 127.0.91.2, probes from 127.0.91.6 (127.0.0.6 in a pod).
const appIP = "127.0.91.2"

var srcIP = netip.MustParseAddr("127.0.91.6")

type harness struct {
	set  *Set
	logs *testutil.Buffer
	reg  *prometheus.Registry
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{logs: &testutil.Buffer{}, reg: prometheus.NewRegistry()}
	set, err := New(Options{Config: cfg, Target: appIP, StatusPort: 15020, SourceV4: srcIP,
		Logger: slog.New(slog.NewTextHandler(h.logs, nil)), Registerer: h.reg})
	if err != nil {
		t.Fatal(err)
	}
	h.set = set
	return h
}

// probe sends the kubelet's request (User-Agent kube-probe/1.36, Accept */*) for path.
func (h *harness) probe(path string, mod func(*http.Request)) *http.Response {
	r := httptest.NewRequest(http.MethodGet, "http://127.0.91.1:15020"+path, nil)
	r.Header.Set("User-Agent", "kube-probe/1.36")
	r.Header.Set("Accept", "*/*")
	if mod != nil {
		mod(r)
	}
	w := httptest.NewRecorder()
	h.set.ServeHTTP(w, r)
	return w.Result()
}

func (h *harness) count(container, probe, result, reason string) float64 {
	return promtest.ToFloat64(h.set.total.WithLabelValues(container, probe, result, reason))
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", appIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

func portOf(ln net.Listener) int32 { return int32(ln.Addr().(*net.TCPAddr).Port) }

// httpApp serves h on a loopback port and returns the port.
func httpApp(t *testing.T, h http.Handler) int32 {
	t.Helper()
	ln := listen(t)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return portOf(ln)
}

// rawApp runs handle for each connection after reading the request head.
func rawApp(t *testing.T, handle func(c *net.TCPConn)) int32 {
	t.Helper()
	ln := listen(t)
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil || line == "\r\n" {
						break
					}
				}
				handle(c.(*net.TCPConn))
			}()
		}
	}()
	return portOf(ln)
}

func closedPort(t *testing.T) int32 {
	t.Helper()
	ln := listen(t)
	p := portOf(ln)
	_ = ln.Close()
	return p
}

func httpCfg(port int32, path, scheme string, timeout int32) Config {
	return Config{"/app-health/jetty/livez": {HTTPGet: &HTTPGetAction{Path: path, Port: IntOrString{Int: port}, Scheme: scheme}, TimeoutSeconds: timeout}}
}

func TestHTTPProbe(t *testing.T) {
	okHandler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok.jsp":
			_, _ = io.WriteString(w, "success")
		case "/moved":
			http.Redirect(w, r, "/ok.jsp", http.StatusMovedPermanently)
		case "/elsewhere":
			http.Redirect(w, r, "http://127.0.91.250:1/x", http.StatusFound)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		case "/missing":
			http.Error(w, "no such page", http.StatusNotFound)
		case "/broken":
			http.Error(w, "java.lang.OutOfMemoryError", http.StatusInternalServerError)
		case "/big":
			_, _ = w.Write(bytes.Repeat([]byte("x"), 20000))
		}
	})
	app := httpApp(t, okHandler)
	// An app that resets the connection after reading the request (SO_LINGER 0, as an
	// app killed by the OOM killer does).
	reset := rawApp(t, func(c *net.TCPConn) { _ = c.SetLinger(0) })
	// Headers, then the connection closes before the promised body.
	headersOnly := rawApp(t, func(c *net.TCPConn) {
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
	})
	midBody := rawApp(t, func(c *net.TCPConn) {
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"+strings.Repeat("y", 50))
	})
	// The body breaks after the 10 KiB the kubelet reads: the kubelet never sees it.
	lateBreak := rawApp(t, func(c *net.TCPConn) {
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 30000\r\n\r\n"+strings.Repeat("z", 15000))
	})
	refused := closedPort(t)
	base := func(p int32) string { return "http://" + appIP + ":" + strconv.Itoa(int(p)) }

	tests := []struct {
		name       string
		port       int32
		path       string
		wantStatus int
		wantBody   string // prefix
		wantErr    string // x-lucid-probe-error; "" = none
		reason     string
	}{
		{"200", app, "/ok.jsp", 200, "success", "", ReasonOK},
		{"301 same host followed", app, "/moved", 200, "success", "", ReasonOK},
		{"302 other host answered 200", app, "/elsewhere", 200, "<a href=", "", ReasonRedirect},
		{"404 passed through", app, "/missing", 404, "no such page", "livez for container jetty: GET " + base(app) + "/missing: the app answered 404 Not Found: \"no such page\"", ReasonStatus},
		{"500 passed through", app, "/broken", 500, "java.lang.OutOfMemoryError", "livez for container jetty: GET " + base(app) + "/broken: the app answered 500 Internal Server Error: \"java.lang.OutOfMemoryError\"", ReasonStatus},
		{"too many redirects", app, "/loop", 502, "livez for container jetty", "livez for container jetty: GET " + base(app) + "/loop: stopped after 10 redirects", ReasonRedirects},
		{"big body cut at 10 KiB", app, "/big", 200, strings.Repeat("x", 100), "", ReasonOK},
		{"refused", refused, "/ok.jsp", 502, "livez for container jetty", "livez for container jetty: GET " + base(refused) + "/ok.jsp: connect: connection refused (nothing listens on the port)", ReasonRefused},
		{"reset", reset, "/ok.jsp", 502, "livez", "livez for container jetty: GET " + base(reset) + "/ok.jsp: read: connection reset by peer after 0 bytes", ReasonReset},
		{"closed after headers", headersOnly, "/ok.jsp", 502, "livez", "livez for container jetty: GET " + base(headersOnly) + "/ok.jsp: connection closed by the app after 40 bytes (in the response body)", ReasonClosed},
		{"closed mid-body", midBody, "/ok.jsp", 502, "livez", "livez for container jetty: GET " + base(midBody) + "/ok.jsp: connection closed by the app after 90 bytes (in the response body)", ReasonClosed},
		{"broken after 10 KiB", lateBreak, "/ok.jsp", 200, "zzz", "", ReasonOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, httpCfg(tc.port, tc.path, "", 5))
			resp := h.probe("/app-health/jetty/livez", nil)
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus || !strings.HasPrefix(string(body), tc.wantBody) {
				t.Fatalf("got %d %.80q, want %d %q", resp.StatusCode, body, tc.wantStatus, tc.wantBody)
			}
			if got := resp.Header.Get(ErrorHeader); got != tc.wantErr {
				t.Fatalf("%s:\n got %q\nwant %q", ErrorHeader, got, tc.wantErr)
			}
			if len(body) > maxBody {
				t.Fatalf("body of %d bytes, more than 10 KiB", len(body))
			}
			result := "success"
			if tc.wantErr != "" {
				result = "failure"
				if tc.reason != ReasonStatus && string(body) != tc.wantErr+"\n" {
					t.Fatalf("body %q does not carry the cause", body)
				}
			}
			if n := h.count("jetty", "livez", result, tc.reason); n != 1 {
				t.Fatalf("lucid_app_probe_total{result=%q,reason=%q} = %v", result, tc.reason, n)
			}
		})
	}
}

func TestHTTPProbeTimeout(t *testing.T) {
	release := make(chan struct{})
	app := httpApp(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer close(release)
	h := newHarness(t, httpCfg(app, "/slow", "", 1))
	resp := h.probe("/app-health/jetty/livez", nil)
	defer resp.Body.Close()
	want := "livez for container jetty: GET http://" + appIP + ":" + strconv.Itoa(int(app)) + "/slow: no response within the probe's timeout (1s) after 0 bytes"
	if resp.StatusCode != 504 || resp.Header.Get(ErrorHeader) != want {
		t.Fatalf("got %d %q\nwant 504 %q", resp.StatusCode, resp.Header.Get(ErrorHeader), want)
	}
}

// The app sees the kubelet's request: its headers, Host rewritten from the status port to
// the app's port, no Accept-Encoding added, from the probe source address, a new
// connection each time.
func TestHTTPProbeRequest(t *testing.T) {
	type seen struct {
		host, ua, accept, enc, custom, remote, conn string
	}
	got := make(chan seen, 4)
	app := httpApp(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.Host, r.UserAgent(), r.Header.Get("Accept"), r.Header.Get("Accept-Encoding"), r.Header.Get("X-Custom"), r.RemoteAddr, r.Header.Get("Connection")}
	}))
	h := newHarness(t, httpCfg(app, "ok", "", 0)) // path without a leading slash, no timeout
	for i, tc := range []struct {
		host, wantHost string
	}{
		{"127.0.91.1:15020", "127.0.91.1:" + strconv.Itoa(int(app))},
		{"example.com", "example.com"},
		{"example.com:8443", "example.com:8443"},
	} {
		resp := h.probe("/app-health/jetty/livez", func(r *http.Request) {
			r.Host = tc.host
			r.Header.Set("X-Custom", "v")
		})
		_ = resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%d: status %d", i, resp.StatusCode)
		}
		s := <-got
		if s.host != tc.wantHost || s.ua != "kube-probe/1.36" || s.accept != "*/*" || s.enc != "" || s.custom != "v" {
			t.Fatalf("%d: app saw %+v", i, s)
		}
		if ap := netip.MustParseAddrPort(s.remote); ap.Addr() != srcIP {
			t.Fatalf("%d: probe came from %s, want %s", i, ap, srcIP)
		}
	}
}

func TestHTTPSProbe(t *testing.T) {
	tlsApp := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprintf(w, "tls %s", r.Proto)
	}))
	tlsApp.Listener = listen(t)
	tlsApp.EnableHTTP2 = true
	tlsApp.StartTLS()
	defer tlsApp.Close()
	plain := httpApp(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))

	h := newHarness(t, httpCfg(portOf(tlsApp.Listener), "/", "HTTPS", 5))
	resp := h.probe("/app-health/jetty/livez", nil)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "tls HTTP/2.0" {
		t.Fatalf("HTTPS app (unverified certificate, HTTP/2 negotiated): %d %q", resp.StatusCode, body)
	}

	h = newHarness(t, httpCfg(plain, "/", "HTTPS", 5))
	resp = h.probe("/app-health/jetty/livez", nil)
	_ = resp.Body.Close()
	if e := resp.Header.Get(ErrorHeader); resp.StatusCode != 502 || !strings.Contains(e, ": TLS handshake: ") {
		t.Fatalf("HTTPS probe of a plain app: %d %q", resp.StatusCode, e)
	}
	if h.count("jetty", "livez", "failure", ReasonTLS) != 1 {
		t.Fatal("tls failure not counted")
	}
	_ = tls.VersionTLS13
}

func TestTCPProbe(t *testing.T) {
	ln := listen(t)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	refused := closedPort(t)
	cfg := Config{
		"/app-health/db/livez":  {TCPSocket: &TCPSocketAction{Port: IntOrString{Int: portOf(ln)}}, TimeoutSeconds: 1},
		"/app-health/db/readyz": {TCPSocket: &TCPSocketAction{Port: IntOrString{Int: refused}}, TimeoutSeconds: 1},
	}
	h := newHarness(t, cfg)
	resp := h.probe("/app-health/db/livez", nil)
	_ = resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("open port: %d", resp.StatusCode)
	}
	resp = h.probe("/app-health/db/readyz", nil)
	_ = resp.Body.Close()
	want := fmt.Sprintf("readyz for container db: tcp %s:%d: connect: connection refused (nothing listens on the port)", appIP, refused)
	if resp.StatusCode != 502 || resp.Header.Get(ErrorHeader) != want {
		t.Fatalf("closed port: %d %q", resp.StatusCode, resp.Header.Get(ErrorHeader))
	}
}

func TestGRPCProbe(t *testing.T) {
	serve := func(register func(*grpc.Server)) int32 {
		ln := listen(t)
		s := grpc.NewServer()
		register(s)
		go func() { _ = s.Serve(ln) }()
		t.Cleanup(s.Stop)
		return portOf(ln)
	}
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("down", healthpb.HealthCheckResponse_NOT_SERVING)
	withHealth := serve(func(s *grpc.Server) { healthpb.RegisterHealthServer(s, hs) })
	without := serve(func(*grpc.Server) {})
	refused := closedPort(t)
	down := "down"
	cfg := Config{
		"/app-health/g/livez":       {GRPC: &GRPCAction{Port: withHealth}, TimeoutSeconds: 5},
		"/app-health/g/readyz":      {GRPC: &GRPCAction{Port: withHealth, Service: &down}, TimeoutSeconds: 5},
		"/app-health/g/startupz":    {GRPC: &GRPCAction{Port: without}, TimeoutSeconds: 5},
		"/app-lifecycle/g/prestopz": {GRPC: &GRPCAction{Port: refused}, TimeoutSeconds: 5},
	}
	h := newHarness(t, cfg)
	for _, tc := range []struct {
		path   string
		status int
		errHas string
	}{
		{"/app-health/g/livez", 200, ""},
		{"/app-health/g/readyz", 503, "readyz for container g: grpc.health.v1.Health/Check " + appIP + ":" + strconv.Itoa(int(withHealth)) + ` service "down": the app answered NOT_SERVING`},
		{"/app-health/g/startupz", 501, "the app does not implement the gRPC health protocol (grpc.health.v1.Health)"},
		{"/app-lifecycle/g/prestopz", 502, "connect: connection refused"},
	} {
		resp := h.probe(tc.path, func(r *http.Request) {})
		_ = resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(resp.Header.Get(ErrorHeader), tc.errHas) || (tc.errHas == "") != (resp.Header.Get(ErrorHeader) == "") {
			t.Errorf("%s: got %d %q, want %d %q", tc.path, resp.StatusCode, resp.Header.Get(ErrorHeader), tc.status, tc.errHas)
		}
	}
}

func TestUnknownPath(t *testing.T) {
	h := newHarness(t, Config{})
	resp := h.probe("/app-health/nope/livez", nil)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 400 || string(body) != "app prober config does not exists for /app-health/nope/livez\n" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
}

// One warning per state change (with the count of failures so far), not per probe.
func TestProbeLogsTransitions(t *testing.T) {
	var mu sync.Mutex
	status := 200
	app := httpApp(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.WriteHeader(status)
	}))
	set := func(s int) { mu.Lock(); status = s; mu.Unlock() }
	h := newHarness(t, httpCfg(app, "/", "", 5))
	run := func(n int) {
		for range n {
			resp := h.probe("/app-health/jetty/livez", nil)
			_ = resp.Body.Close()
		}
	}
	run(2)
	set(500)
	run(3)
	set(503)
	run(2)
	set(200)
	run(2)
	logs := h.logs.String()
	if c := strings.Count(logs, "app probe failed"); c != 1 {
		t.Fatalf("want 1 failure warning (same reason: app status), got %d:\n%s", c, logs)
	}
	if !strings.Contains(logs, "level=WARN msg=\"app probe failed\" container=jetty probe=livez target=\"GET http://"+appIP) ||
		!strings.Contains(logs, "reason=status cause=\"the app answered 500 Internal Server Error\" failures=1") {
		t.Fatalf("warning lacks container/probe/target/cause:\n%s", logs)
	}
	if !strings.Contains(logs, `msg="app probe succeeds again" container=jetty probe=livez`) || !strings.Contains(logs, "failures=5") {
		t.Fatalf("recovery not logged with the count:\n%s", logs)
	}
	if h.count("jetty", "livez", "failure", ReasonStatus) != 5 || h.count("jetty", "livez", "success", ReasonOK) != 4 {
		t.Fatal("metric counts wrong")
	}
	_ = context.Background
}

// A failing answer's cause quotes the first line of what the app said, bounded and
// without control characters.
func TestBodyExcerpt(t *testing.T) {
	long := strings.Repeat("é", 200)
	for body, want := range map[string]string{
		"":      "",
		" \n\t": "",
		"java.lang.OutOfMemoryError: Java heap space\n\tat com.example.Cache.grow(Cache.java:42)": `: "java.lang.OutOfMemoryError: Java heap space"`,
		"bad\x00\x1b[31mred": `: "bad[31mred"`,
		"quote \"x\"":        `: "quote \"x\""`,
		long:                 `: "` + strings.Repeat("é", excerptLen) + `…"`,
		"\xff\xfeok":         `: "ok"`,
	} {
		if got := bodyExcerpt([]byte(body)); got != want {
			t.Errorf("bodyExcerpt(%.20q) = %q, want %q", body, got, want)
		}
	}
}
