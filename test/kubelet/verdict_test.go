package kubelet

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/kubernetes/pkg/probe"
	k8sgrpc "k8s.io/kubernetes/pkg/probe/grpc"
	k8shttp "k8s.io/kubernetes/pkg/probe/http"
	k8stcp "k8s.io/kubernetes/pkg/probe/tcp"

	"github.com/lucid-mesh/lucid/internal/agent/appprobe"
	"github.com/lucid-mesh/lucid/internal/agent/status"
)

// Addresses: the "pod IP" the app listens on, the status server's address, the probe
// source (127.0.0.6 in a pod).
const (
	appIP    = "127.0.91.51"
	statusIP = "127.0.91.50"
)

// kubeletSees is the kubelet's reading of a probe result: Warning (a redirect it did
// not follow) counts as success, with an event.
func kubeletSees(r probe.Result) string {
	if r == probe.Success || r == probe.Warning {
		return "success"
	}
	return "failure"
}

type appCase struct {
	name string
	// probe is the original probe as the pod declares it (port filled in by the test).
	prober func(port int32) *appprobe.Prober
	port   int32
	// direct and viaLucid are the kubelet's raw results; they differ only where Istio's
	// answer differs (a final 3xx becomes 200: Warning → Success).
	direct, viaLucid probe.Result
}

func TestKubeletVerdicts(t *testing.T) {
	h := newApps(t)
	httpGet := func(path, scheme string, timeout int32) func(int32) *appprobe.Prober {
		return func(port int32) *appprobe.Prober {
			return &appprobe.Prober{HTTPGet: &appprobe.HTTPGetAction{Path: path, Port: appprobe.IntOrString{Int: port}, Scheme: scheme}, TimeoutSeconds: timeout}
		}
	}
	tcpSocket := func(port int32) *appprobe.Prober {
		return &appprobe.Prober{TCPSocket: &appprobe.TCPSocketAction{Port: appprobe.IntOrString{Int: port}}, TimeoutSeconds: 1}
	}
	grpcCheck := func(service string) func(int32) *appprobe.Prober {
		return func(port int32) *appprobe.Prober {
			return &appprobe.Prober{GRPC: &appprobe.GRPCAction{Port: port, Service: &service}, TimeoutSeconds: 2}
		}
	}
	cases := []appCase{
		{"200", httpGet("/ok", "", 2), h.http, probe.Success, probe.Success},
		{"301 same host", httpGet("/moved", "", 2), h.http, probe.Success, probe.Success},
		{"302 other host", httpGet("/elsewhere", "", 2), h.http, probe.Warning, probe.Success},
		{"404", httpGet("/missing", "", 2), h.http, probe.Failure, probe.Failure},
		{"500", httpGet("/broken", "", 2), h.http, probe.Failure, probe.Failure},
		{"11 redirects", httpGet("/loop", "", 2), h.http, probe.Failure, probe.Failure},
		{"20 KiB body", httpGet("/big", "", 2), h.http, probe.Success, probe.Success},
		{"slow > timeout", httpGet("/slow", "", 1), h.http, probe.Failure, probe.Failure},
		{"refused", httpGet("/ok", "", 2), h.closed, probe.Failure, probe.Failure},
		{"reset", httpGet("/ok", "", 2), h.reset, probe.Failure, probe.Failure},
		{"abrupt close after headers", httpGet("/ok", "", 2), h.headersOnly, probe.Failure, probe.Failure},
		{"abrupt close mid-body", httpGet("/ok", "", 2), h.midBody, probe.Failure, probe.Failure},
		{"abrupt close after 10 KiB", httpGet("/ok", "", 2), h.lateBreak, probe.Success, probe.Success},
		{"TLS app, HTTPS probe", httpGet("/ok", "HTTPS", 2), h.tls, probe.Success, probe.Success},
		{"TLS app, HTTP probe", httpGet("/ok", "HTTP", 2), h.tls, probe.Failure, probe.Failure},
		{"plain app, HTTPS probe", httpGet("/ok", "HTTPS", 2), h.http, probe.Failure, probe.Failure},
		{"tcp open", tcpSocket, h.http, probe.Success, probe.Success},
		{"tcp closed", tcpSocket, h.closed, probe.Failure, probe.Failure},
		{"grpc SERVING", grpcCheck(""), h.grpc, probe.Success, probe.Success},
		{"grpc NOT_SERVING", grpcCheck("down"), h.grpc, probe.Failure, probe.Failure},
		{"grpc unimplemented", grpcCheck(""), h.grpcNoHealth, probe.Failure, probe.Failure},
		{"grpc refused", grpcCheck(""), h.closed, probe.Failure, probe.Failure},
	}

	// One status server with every case as a container's livez, as the injector writes it.
	cfg := appprobe.Config{}
	for i, c := range cases {
		cfg[fmt.Sprintf("/app-health/c%d/livez", i)] = c.prober(c.port)
	}
	raw, _ := json.Marshal(cfg)
	parsed, err := appprobe.Parse(string(raw)) // through the env var's JSON, as in a pod
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", statusIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	statusPort := ln.Addr().(*net.TCPAddr).Port
	set, err := appprobe.New(appprobe.Options{Config: parsed, Target: appIP, StatusPort: uint16(statusPort),
		SourceV4: netip.MustParseAddr("127.0.91.56"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	st, err := status.NewServer(status.Options{Ready: func() error { return nil }, AppProbes: set})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: st.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() }) // after the parallel subtests

	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := c.prober(c.port)
			timeout := time.Duration(p.TimeoutSeconds) * time.Second
			direct, dout := kubeletProbe(t, p, appIP, c.port, timeout)
			// The injector's rewrite: httpGet to the status port, /app-health/<c>/livez, scheme HTTP.
			rewritten := &appprobe.Prober{HTTPGet: &appprobe.HTTPGetAction{Path: fmt.Sprintf("/app-health/c%d/livez", i), Port: appprobe.IntOrString{Int: int32(statusPort)}}}
			via, vout := kubeletProbe(t, rewritten, statusIP, int32(statusPort), timeout)
			t.Logf("direct: %s %.120q; via Lucid: %s %.120q", direct, dout, via, vout)
			if direct != c.direct || via != c.viaLucid {
				t.Fatalf("kubelet results: direct %s (want %s), via Lucid %s (want %s)", direct, c.direct, via, c.viaLucid)
			}
			if kubeletSees(direct) != kubeletSees(via) {
				t.Fatalf("the kubelet's verdict differs: directly %s, via Lucid %s", kubeletSees(direct), kubeletSees(via))
			}
		})
	}
}

// kubeletProbe runs the kubelet's own prober for p against host:port.
func kubeletProbe(t *testing.T, p *appprobe.Prober, host string, port int32, timeout time.Duration) (probe.Result, string) {
	t.Helper()
	var res probe.Result
	var out string
	var err error
	switch {
	case p.HTTPGet != nil:
		action := &v1.HTTPGetAction{Path: p.HTTPGet.Path, Port: intstr.FromInt32(port), Scheme: v1.URIScheme(strings.ToUpper(p.HTTPGet.Scheme))}
		req, rerr := k8shttp.NewRequestForHTTPGetAction(action, &v1.Container{}, host, "probe")
		if rerr != nil {
			t.Fatal(rerr)
		}
		res, out, err = k8shttp.New(false).Probe(req, timeout)
	case p.TCPSocket != nil:
		res, out, err = k8stcp.New().Probe(host, int(port), timeout)
	default:
		svc := ""
		if p.GRPC.Service != nil {
			svc = *p.GRPC.Service
		}
		res, out, err = k8sgrpc.New().Probe(host, svc, int(port), timeout)
	}
	if err != nil {
		// The kubelet records an error as a failed probe.
		return probe.Failure, err.Error()
	}
	return res, out
}

// apps are the misbehaving (and well-behaved) apps, each on its own port of appIP.
type apps struct {
	http, reset, headersOnly, midBody, lateBreak, tls, closed, grpc, grpcNoHealth int32
}

func newApps(t *testing.T) *apps {
	t.Helper()
	a := &apps{}
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "success") })
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusMovedPermanently) })
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://127.0.91.59:1/ok", http.StatusFound)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	mux.HandleFunc("/missing", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	mux.HandleFunc("/broken", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "OutOfMemoryError", 500) })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(make([]byte, 20<<10)) })
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	a.http = serveHTTP(t, mux)
	a.reset = raw(t, func(c *net.TCPConn) { _ = c.SetLinger(0) })
	a.headersOnly = raw(t, func(c *net.TCPConn) { _, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n") })
	a.midBody = raw(t, func(c *net.TCPConn) {
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"+strings.Repeat("y", 50))
	})
	a.lateBreak = raw(t, func(c *net.TCPConn) {
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 30000\r\n\r\n"+strings.Repeat("z", 15000))
	})
	ts := httptest.NewUnstartedServer(mux)
	ts.Listener = listen(t)
	ts.EnableHTTP2 = true
	ts.StartTLS()
	t.Cleanup(ts.Close)
	a.tls = port(ts.Listener)
	ln := listen(t)
	a.closed = port(ln)
	_ = ln.Close()

	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("down", healthpb.HealthCheckResponse_NOT_SERVING)
	a.grpc = serveGRPC(t, func(s *grpc.Server) { healthpb.RegisterHealthServer(s, hs) })
	a.grpcNoHealth = serveGRPC(t, func(*grpc.Server) {})
	return a
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", appIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func port(ln net.Listener) int32 { return int32(ln.Addr().(*net.TCPAddr).Port) }

func serveHTTP(t *testing.T, h http.Handler) int32 {
	ln := listen(t)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return port(ln)
}

func serveGRPC(t *testing.T, register func(*grpc.Server)) int32 {
	ln := listen(t)
	s := grpc.NewServer()
	register(s)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return port(ln)
}

// raw reads a request head on each connection, then lets handle misbehave.
func raw(t *testing.T, handle func(*net.TCPConn)) int32 {
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
	return port(ln)
}
