package dashboard

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/lucid-mesh/lucid/internal/agent"
	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/controlplane/discovery"
	"github.com/lucid-mesh/lucid/internal/local/demoapp"
	"github.com/lucid-mesh/lucid/internal/local/up"
	"github.com/lucid-mesh/lucid/internal/testutil"
	"github.com/lucid-mesh/lucid/internal/testutil/meshtest"
)

// The example's addresses are moved into this package's subnet by
// meshtest.RewriteExampleAddresses, so the test runs beside test/e2e's `lucid up` (which
// uses the example's own): sidecars 127.0.10.k → 127.0.124.(10+k), apps 127.0.20.k →
// 127.0.124.(20+k), the gateway 127.0.0.1 → 127.0.124.2.
const (
	subnet          = 124
	controlPlane    = "127.0.124.100"
	gatewayIP       = "127.0.124.2"
	gatewayAddr     = gatewayIP + ":8080"
	curlProxy       = "http://127.0.124.19:15001" // the client workload's sidecar (the example's .10.9)
	productpageSide = "127.0.124.11"              // productpage's sidecar (the example's .10.1)
)

// bookinfo is examples/bookinfo-lite running in this process: the control plane (which
// serves the dashboard), a sidecar per WorkloadEntry, the gateway and the demo apps.
type bookinfo struct {
	t    *testing.T
	dir  string
	logs *testutil.Buffer

	cpCancel context.CancelFunc
	cpDone   chan struct{}

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Debug is the control plane's debug address (the dashboard's).
func (b *bookinfo) Debug() string { return net.JoinHostPort(controlPlane, "15014") }

func startBookinfo(t *testing.T) *bookinfo {
	t.Helper()
	b := &bookinfo{t: t, dir: t.TempDir(), logs: &testutil.Buffer{}}
	_, self, _, _ := runtime.Caller(0)
	src := filepath.Join(filepath.Dir(self), "..", "..", "examples", "bookinfo-lite")
	files, err := filepath.Glob(filepath.Join(src, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("examples/bookinfo-lite: %v (%d files)", err, len(files))
	}
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(b.dir, filepath.Base(f)), []byte(meshtest.RewriteExampleAddresses(string(body), subnet)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	objs, diags := config.LoadDir(b.dir)
	for _, d := range diags {
		if d.Level == config.Error {
			t.Fatalf("examples/bookinfo-lite: %s", d)
		}
	}
	if _, err := up.EnsureCertificates(b.dir, objs, []string{gatewayIP}); err != nil {
		t.Fatalf("gateway certificate: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	t.Cleanup(b.stop)
	b.startControlPlane()
	var ready []string
	for _, o := range objs {
		we, ok := o.Spec.(*networkingv1alpha3.WorkloadEntry)
		if !ok {
			continue
		}
		b.startWorkload(ctx, o, we)
		ready = append(ready, we.GetAddress())
	}
	for _, ip := range ready {
		b.waitReady(ip)
	}
	return b
}

func (b *bookinfo) startControlPlane() {
	b.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	readyc := make(chan struct{})
	done := make(chan struct{})
	b.cpCancel, b.cpDone = cancel, done
	go func() {
		defer close(done)
		err := discovery.Run(ctx, discovery.Options{
			ConfigDir: b.dir, GRPCAddr: net.JoinHostPort(controlPlane, "15010"), DebugAddr: b.Debug(),
			Logger: slog.New(slog.NewTextHandler(b.logs, nil)),
			Ready:  func(string) { close(readyc) },
		})
		if err != nil {
			b.t.Errorf("discovery: %v", err)
		}
	}()
	select {
	case <-readyc:
	case <-done:
		b.t.Fatalf("discovery stopped before publishing; logs:\n%s", b.logs)
	case <-time.After(15 * time.Second):
		b.t.Fatalf("discovery did not publish within 15 s; logs:\n%s", b.logs)
	}
}

// restartControlPlane stops the control plane (and its dashboard) and starts it again on
// the same addresses; the proxies reconnect on their own.
func (b *bookinfo) restartControlPlane() {
	b.t.Helper()
	b.cpCancel()
	<-b.cpDone
	b.startControlPlane()
}

func (b *bookinfo) startWorkload(ctx context.Context, o *config.Object, we *networkingv1alpha3.WorkloadEntry) {
	b.t.Helper()
	ip := netip.MustParseAddr(we.GetAddress())
	ann := o.Annotations
	b.wg.Go(func() {
		err := agent.Run(ctx, agent.Options{
			IP: ip, Workload: o.Name, Namespace: o.Namespace, Labels: we.GetLabels(),
			Discovery: net.JoinHostPort(controlPlane, "15010"), AdminPort: 15000, StatusPort: 15020,
			LogOutput: b.logs, DrainDuration: 200 * time.Millisecond,
			AgentOptions: agent.AgentOptions{Router: ann["lucid.dev/proxy"] == "router"},
		})
		if err != nil {
			b.t.Errorf("proxy %s: %v", o.Name, err)
		}
	})
	cmd := ann["lucid.dev/app"]
	if cmd == "" {
		return
	}
	cfg := demoapp.Config{Proxy: "http://" + net.JoinHostPort(we.GetAddress(), "15001")}
	args := strings.Fields(strings.ReplaceAll(cmd, "$LUCID_APP_ADDRESS", ann["lucid.dev/app-address"]))
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "--listen":
			cfg.Listen = args[i+1]
		case "--name":
			cfg.Name = args[i+1]
		case "--version":
			cfg.Version = args[i+1]
		case "--call":
			cfg.Calls = append(cfg.Calls, args[i+1])
		}
	}
	b.wg.Go(func() {
		if err := demoapp.Run(ctx, cfg, slog.New(slog.DiscardHandler)); err != nil && ctx.Err() == nil {
			b.t.Errorf("app %s: %v", o.Name, err)
		}
	})
}

func (b *bookinfo) waitReady(ip string) {
	b.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + net.JoinHostPort(ip, "15020") + "/healthz/ready")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, body)
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.t.Fatalf("proxy %s not ready: %s\nlogs:\n%s", ip, last, b.logs)
}

func (b *bookinfo) stop() {
	b.cancel()
	b.wg.Wait()
	if b.cpCancel != nil {
		b.cpCancel()
		<-b.cpDone
	}
}

// traffic sends requests until stop is called, at about rps a second: through the
// gateway (gateway → productpage → reviews → ratings) and, with v3 set, /v3 requests
// from the client workload (→ reviews subset v3, which has no endpoints).
type traffic struct {
	v3     sync.Mutex
	sendV3 bool
	cancel context.CancelFunc
	done   chan struct{}
}

func startTraffic(t *testing.T, rps int) *traffic {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tr := &traffic{cancel: cancel, done: make(chan struct{})}
	proxyURL, _ := url.Parse(curlProxy)
	viaGateway := &http.Client{Timeout: 5 * time.Second}
	viaCurl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}
	get := func(c *http.Client, u string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if resp, err := c.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	go func() {
		defer close(tr.done)
		tick := time.NewTicker(time.Second / time.Duration(rps))
		defer tick.Stop()
		for n := 0; n < 100000; n++ { // bounded: the test stops it long before
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			get(viaGateway, "http://"+gatewayAddr+"/productpage")
			tr.v3.Lock()
			v3 := tr.sendV3
			tr.v3.Unlock()
			if v3 {
				get(viaCurl, "http://reviews:9080/v3/reviews")
			}
		}
	}()
	t.Cleanup(tr.stop)
	return tr
}

func (tr *traffic) startV3() {
	tr.v3.Lock()
	tr.sendV3 = true
	tr.v3.Unlock()
}

func (tr *traffic) stop() {
	tr.cancel()
	<-tr.done
}
