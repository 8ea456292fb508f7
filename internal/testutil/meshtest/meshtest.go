// Package meshtest runs a whole local mesh inside one test process: the control plane
// (discovery), one sidecar per workload and a tiny app per workload, all on loopback
// addresses the test chooses. It is for tests only; `lucid up` does the same with
// processes.
package meshtest

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"net/netip"

	"github.com/lucid-mesh/lucid/internal/agent"
	"github.com/lucid-mesh/lucid/internal/controlplane/discovery"
	"github.com/lucid-mesh/lucid/internal/testutil"
	"github.com/lucid-mesh/lucid/internal/version"
)

// Workload is one workload of the test mesh.
type Workload struct {
	Name    string
	IP      string            // its loopback address (the sidecar binds it)
	AppIP   string            // where its app listens ("" → no app)
	Ports   []int             // the app's ports (served by an echo app naming Name and Version)
	Labels  map[string]string // for metrics
	Version string
	// Namespace is the workload's namespace ("" → default).
	Namespace string
	// Router runs the proxy as a gateway (`lucid gateway`, node id router~…) instead of a
	// sidecar: its listeners are the Gateways selecting Labels. Give it no app.
	Router bool
	// ServiceAccount is the workload's identity with Options.MTLS ("" → default); its
	// WorkloadEntry should name the same.
	ServiceAccount string
	// AccessLog is the file this proxy writes its access log to (TEXT), instead of
	// Options.AccessLog.
	AccessLog string
	// DemoApp is the arguments of the `lucid demo-app` command line an example gives the
	// workload's app (Example sets it); with Options.DemoApps the app runs from them
	// (demo.go) instead of an echo app.
	DemoApp []string
	// Agent is more of this proxy's options (ProxyConfig, AdminAddress, AppAddress, …);
	// Router is Agent.Router or Router.
	Agent agent.AgentOptions
	// App serves the app's ports instead of the echo app (a test's own app, e.g. one
	// counting what reaches it); the mesh shuts it down when it stops.
	App *http.Server
}

// Mesh is a running test mesh.
type Mesh struct {
	t      testing.TB
	Dir    string
	ADS    string
	cancel context.CancelFunc // the sidecars and apps
	wg     sync.WaitGroup
	Logs   *testutil.Buffer
	// State is the CA's state directory with Options.MTLS (root-cert.pem, tokens).
	State string

	cp       discovery.Options // the control plane's options, for RestartControlPlane
	cpCancel context.CancelFunc
	cpDone   chan struct{}
}

// Options tune a test mesh: its control plane, and the apps it runs.
type Options struct {
	// PollInterval and Debounce are the config directory's scan interval and the store's
	// quiet period (0: the control plane's defaults, 200 ms and 100 ms).
	PollInterval, Debounce time.Duration
	// MTLS runs the mesh CA (mtls.go) on this address (e.g. 127.0.163.100:15012) and gives
	// every proxy its workload certificate: auto mTLS and PeerAuthentication apply.
	MTLS string
	// CertTTL is the workload certificates' lifetime with MTLS (default 24 h).
	CertTTL time.Duration
	// XDSOverTLS has the sidecars get xDS on the MTLS address (the TLS port, with
	// their workload certificates), as on Kubernetes, instead of the plaintext port.
	XDSOverTLS bool
	// TrustDomain is the workloads' trust domain with MTLS; set it to MeshConfig's
	// trustDomain when that is not cluster.local.
	TrustDomain string
	// MeshConfig is the control plane's MeshConfig YAML (the `mesh` key of Istio's
	// ConfigMap); "" for Istio's defaults.
	MeshConfig string
	// AccessLog, when set, is the file every sidecar writes its access log to (TEXT).
	AccessLog string
	// GRPCAddr is where the control plane serves xDS ("" → 127.0.0.1, any port); give it
	// a port for RestartControlPlane. DebugAddr, when set, is its debug port (the
	// dashboard, tap relay, syncz).
	GRPCAddr, DebugAddr string
	// DemoApps runs each workload's app from its Workload.DemoApp command line (the
	// example's demo apps, calling each other through their sidecars) instead of an echo
	// app.
	DemoApps bool
}

// Start writes files (name → YAML) into a fresh config directory and starts discovery,
// the sidecars and the apps. Everything stops at test cleanup.
func Start(t testing.TB, files map[string]string, workloads []Workload) *Mesh {
	t.Helper()
	return StartWith(t, Options{}, files, workloads)
}

// StartWith is Start with the control plane tuned by o.
func StartWith(t testing.TB, o Options, files map[string]string, workloads []Workload) *Mesh {
	t.Helper()
	m := &Mesh{t: t, Dir: t.TempDir(), Logs: &testutil.Buffer{}}
	for name, body := range files {
		m.WriteFile(name, body)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	t.Cleanup(m.Stop)

	var meshConfig string
	if o.MeshConfig != "" {
		meshConfig = filepath.Join(t.TempDir(), "meshconfig.yaml")
		if err := os.WriteFile(meshConfig, []byte(o.MeshConfig), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	m.cp = discovery.Options{
		ConfigDir: m.Dir, GRPCAddr: cmp.Or(o.GRPCAddr, "127.0.0.1:0"), DebugAddr: o.DebugAddr,
		Logger: slog.New(slog.NewTextHandler(m.Logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		CA:     m.caOptions(o), MeshConfig: meshConfig, // mtls.go
		// Without options, the control plane's default poll and debounce timers: tests of
		// the 1 s bound rely on them.
		PollInterval: o.PollInterval, Debounce: o.Debounce,
	}
	m.startControlPlane()

	for _, w := range workloads {
		switch {
		case o.DemoApps && w.DemoApp != nil:
			m.startDemoApp(ctx, w) // demo.go
		case w.AppIP != "":
			for _, p := range w.Ports {
				m.startApp(ctx, w, p)
			}
		}
		ip := netip.MustParseAddr(w.IP)
		identity := m.identity(o, w) // mtls.go
		ao := w.Agent
		ao.Router = ao.Router || w.Router
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			err := agent.Run(ctx, agent.Options{
				IP: ip, Workload: w.Name, Namespace: cmp.Or(w.Namespace, "default"), Labels: w.Labels, Discovery: m.xdsAddr(o),
				AdminPort: 15000, StatusPort: 15020, LogLevel: "debug", LogOutput: m.Logs,
				DrainDuration: 500 * time.Millisecond, AgentOptions: ao,
				Version:   version.Get().Envoy(), // as `lucid sidecar` and `lucid gateway` report it
				Identity:  identity,              // mtls.go
				AccessLog: cmp.Or(w.AccessLog, o.AccessLog),
			})
			if err != nil {
				t.Errorf("sidecar %s: %v", w.Name, err)
			}
		}()
	}
	for _, w := range workloads {
		m.WaitReady(w.IP, 10*time.Second)
	}
	return m
}

// startControlPlane runs discovery with m.cp until Stop or RestartControlPlane, and
// waits for its first configuration.
func (m *Mesh) startControlPlane() {
	m.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	m.cpCancel, m.cpDone = cancel, done
	adsAddr := make(chan string, 1)
	o := m.cp
	o.Ready = func(a string) { adsAddr <- a }
	go func() {
		defer close(done)
		if err := discovery.Run(ctx, o); err != nil {
			m.t.Errorf("discovery: %v", err)
		}
	}()
	select {
	case m.ADS = <-adsAddr:
	case <-done:
		m.t.Fatalf("discovery stopped before publishing a configuration; logs:\n%s", m.Logs.String())
	case <-time.After(10 * time.Second):
		m.t.Fatalf("discovery did not publish a configuration within 10s; logs:\n%s", m.Logs.String())
	}
}

// RestartControlPlane stops the control plane and starts it again with the same options
// (a control plane upgrade, a crash); the proxies reconnect on their own when
// Options.GRPCAddr gave it a fixed address.
func (m *Mesh) RestartControlPlane() {
	m.t.Helper()
	m.cpCancel()
	<-m.cpDone
	m.startControlPlane()
}

// WriteFile writes (or replaces) one config file atomically, creating its directory.
func (m *Mesh) WriteFile(name, body string) {
	m.t.Helper()
	p := filepath.Join(m.Dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		m.t.Fatal(err)
	}
	tmp := p + ".tmp~"
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		m.t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		m.t.Fatal(err)
	}
}

// WaitReady waits for a sidecar's /healthz/ready.
func (m *Mesh) WaitReady(ip string, d time.Duration) {
	m.t.Helper()
	if err := testutil.Poll(d, func() error { return Ready(ip) }); err != nil {
		m.t.Fatalf("%v after %s\nlogs:\n%s", err, d, m.Logs.String())
	}
}

// Ready is nil when the sidecar at ip answers 200 on its status port's /healthz/ready,
// else what it answered (a mesh a TestMain starts waits for it with testutil.Poll).
func Ready(ip string) error {
	resp, err := http.Get("http://" + net.JoinHostPort(ip, "15020") + "/healthz/ready")
	if err != nil {
		return fmt.Errorf("sidecar %s not ready: %w", ip, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("sidecar %s not ready: %d %s", ip, resp.StatusCode, b)
	}
	return nil
}

// Client returns an HTTP client that sends through the sidecar at ip (its :15001 explicit proxy).
func (m *Mesh) Client(ip string) *http.Client {
	u := &url.URL{Scheme: "http", Host: net.JoinHostPort(ip, "15001")}
	return &http.Client{
		Transport: &http.Transport{Proxy: http.ProxyURL(u), MaxIdleConnsPerHost: 64},
		Timeout:   10 * time.Second,
	}
}

// Stop cancels everything and waits.
func (m *Mesh) Stop() {
	m.cancel()
	if m.cpCancel != nil {
		m.cpCancel()
	}
	done := make(chan struct{})
	go func() {
		m.wg.Wait()
		if m.cpDone != nil {
			<-m.cpDone
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		m.t.Errorf("mesh did not stop within 15s")
	}
}

// Echo is what the test apps answer.
type Echo struct {
	Service string      `json:"service"`
	Version string      `json:"version"`
	Path    string      `json:"path"`
	Host    string      `json:"host"`
	Headers http.Header `json:"headers"`
}

func (m *Mesh) startApp(ctx context.Context, w Workload, port int) {
	m.t.Helper()
	addr := net.JoinHostPort(w.AppIP, fmt.Sprint(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		m.t.Fatalf("app %s: %v", w.Name, err)
	}
	srv := w.App
	if srv == nil {
		srv = &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			rw.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(rw).Encode(Echo{Service: w.Name, Version: w.Version, Path: r.URL.RequestURI(), Host: r.Host, Headers: r.Header})
		}), ReadHeaderTimeout: 5 * time.Second}
	}
	m.wg.Add(2)
	go func() {
		defer m.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.t.Errorf("app %s: %v", w.Name, err)
		}
	}()
	go func() {
		defer m.wg.Done()
		<-ctx.Done()
		sctx, c := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer c()
		_ = srv.Shutdown(sctx)
		_ = srv.Close() // what is still open after the grace period
	}()
}
