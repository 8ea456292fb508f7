package diag

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/agent"
	"github.com/lucid-mesh/lucid/internal/controlplane/discovery"
	"github.com/lucid-mesh/lucid/internal/testutil"
	"github.com/lucid-mesh/lucid/internal/testutil/meshtest"
)

// The test mesh: examples/bookinfo-lite with its addresses moved into 127.0.94.0/24 by
// meshtest.Example (sidecars 127.0.10.N → 127.0.94.1N, apps 127.0.20.N → 127.0.94.2N, so
// curl is 127.0.94.19) and the control plane's debug port on 127.0.94.1:15014.
const (
	debugAddr = "127.0.94.1:15014"
	curlIP    = "127.0.94.19"
)

type workload struct {
	name, ip, appIP, version string
	labels                   map[string]string
}

// workloads are the example's, set when the shared mesh starts.
var workloads []workload

// mesh is one running test mesh; tests share it (they only read it).
type mesh struct {
	dir      string
	logDir   string
	logs     *testutil.Buffer
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	errs     chan error
	startErr error
}

var (
	sharedOnce sync.Once
	shared     *mesh
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.stop()
	}
	os.Exit(code)
}

// bookinfo is examples/bookinfo-lite in 127.0.94.0/24 without its gateway (these tests
// look at sidecars): its files and its workloads.
func bookinfo(t testing.TB) (map[string]string, []workload) {
	t.Helper()
	files, ws := meshtest.Example(t, "bookinfo-lite", 94, "gateway.yaml")
	var out []workload
	for _, w := range ws {
		out = append(out, workload{w.Name, w.IP, w.AppIP, w.Version, w.Labels})
	}
	return files, out
}

func bookinfoFiles(t testing.TB) map[string]string {
	t.Helper()
	files, _ := bookinfo(t)
	return files
}

// liveMesh starts the shared mesh on first use.
func liveMesh(t *testing.T) *mesh {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a whole mesh")
	}
	sharedOnce.Do(func() { shared = startMesh(t) })
	if shared.startErr != nil {
		t.Fatalf("mesh: %v\nlogs:\n%s", shared.startErr, shared.logs.String())
	}
	return shared
}

func startMesh(t *testing.T) *mesh {
	t.Helper()
	dir, err := os.MkdirTemp("", "lucid-diag-")
	if err != nil {
		t.Fatal(err)
	}
	m := &mesh{dir: filepath.Join(dir, "config"), logDir: filepath.Join(dir, "logs"), logs: &testutil.Buffer{}, errs: make(chan error, 16)}
	_ = os.MkdirAll(m.dir, 0o755)
	_ = os.MkdirAll(m.logDir, 0o755)
	var files map[string]string
	files, workloads = bookinfo(t)
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(m.dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	log := slog.New(slog.NewTextHandler(m.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	adsAddr := make(chan string, 1)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		err := discovery.Run(ctx, discovery.Options{
			ConfigDir: m.dir, GRPCAddr: "127.0.94.1:0", DebugAddr: debugAddr, Logger: log,
			PollInterval: 50 * time.Millisecond, Debounce: 20 * time.Millisecond,
			Ready: func(a string) { adsAddr <- a },
		})
		if err != nil {
			m.errs <- fmt.Errorf("discovery: %w", err)
		}
	}()
	var ads string
	select {
	case ads = <-adsAddr:
	case err := <-m.errs:
		m.startErr = err
		return m
	case <-time.After(10 * time.Second):
		m.startErr = errors.New("discovery did not publish within 10s")
		return m
	}
	for _, w := range workloads {
		if w.appIP != "" {
			if err := m.startApp(ctx, w); err != nil {
				m.startErr = err
				return m
			}
		}
		w := w
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			err := agent.Run(ctx, agent.Options{
				IP: netip.MustParseAddr(w.ip), Workload: w.name, Namespace: "default", Labels: w.labels,
				Discovery: ads, AdminPort: 15000, StatusPort: 15020, LogLevel: "info", LogOutput: m.logs,
				AccessLog: filepath.Join(m.logDir, w.name+".log"), DrainDuration: 200 * time.Millisecond,
			})
			if err != nil {
				m.errs <- fmt.Errorf("sidecar %s: %w", w.name, err)
			}
		}()
	}
	for _, w := range workloads {
		if err := testutil.Poll(15*time.Second, func() error { return meshtest.Ready(w.ip) }); err != nil {
			m.startErr = err
			return m
		}
	}
	return m
}

func (m *mesh) stop() {
	m.cancel()
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		fmt.Fprintln(os.Stderr, "diag: mesh did not stop within 15s")
	}
	_ = os.RemoveAll(filepath.Dir(m.dir))
}

// accessLog returns a sidecar's access log so far.
func (m *mesh) accessLog(t *testing.T, workload string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(m.logDir, workload+".log"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(b)
}

// client sends requests through a sidecar's explicit outbound proxy (:15001).
func client(ip string) *http.Client {
	u := &url.URL{Scheme: "http", Host: net.JoinHostPort(ip, "15001")}
	return &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(u)}, Timeout: 10 * time.Second}
}

func (m *mesh) startApp(ctx context.Context, w workload) error {
	ln, err := net.Listen("tcp", net.JoinHostPort(w.appIP, "9080"))
	if err != nil {
		return fmt.Errorf("app %s: %w", w.name, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		rw.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(rw).Encode(map[string]string{"service": w.name, "version": w.version, "path": r.URL.RequestURI()})
	}), ReadHeaderTimeout: 5 * time.Second}
	m.wg.Add(2)
	go func() {
		defer m.wg.Done()
		_ = srv.Serve(ln)
	}()
	go func() {
		defer m.wg.Done()
		<-ctx.Done()
		sctx, c := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer c()
		_ = srv.Shutdown(sctx)
	}()
	return nil
}
