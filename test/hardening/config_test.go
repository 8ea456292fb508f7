package hardening

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/testutil"
)

// load sends requests through the gateway until stop, counting those that did not get
// the app's 200.
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	failures   []string
	stop       chan struct{}
	wg         sync.WaitGroup
}

func startLoad(workers int) *load {
	l := &load{stop: make(chan struct{})}
	tr := &http.Transport{MaxIdleConnsPerHost: workers}
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				case <-tick.C:
				}
				req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://%s/echo/load-%d-%d", gwListen, w, i), nil)
				req.Host = "app"
				resp, err := c.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err == nil && resp.StatusCode == http.StatusOK {
					l.ok.Add(1)
					continue
				}
				l.failed.Add(1)
				why := fmt.Sprint(err)
				if err == nil {
					why = fmt.Sprintf("%d %s", resp.StatusCode, resp.Header.Get("X-Lucid-Error"))
				}
				l.mu.Lock()
				if len(l.failures) < 10 {
					l.failures = append(l.failures, time.Now().Format("15:04:05.000")+" "+why)
				}
				l.mu.Unlock()
			}
		}()
	}
	l.wg.Add(1)
	go func() { defer l.wg.Done(); <-l.stop; tr.CloseIdleConnections() }()
	return l
}

func (l *load) end() { close(l.stop); l.wg.Wait() }

// diagnostics are the control plane's current configuration problems.
func diagnostics(t *testing.T) []string {
	t.Helper()
	resp, err := http.Get("http://" + cpIP + ":15014/debug/diagnostics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []string
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// waitDiagnostic waits until a diagnostic contains every piece of want.
func waitDiagnostic(t *testing.T, want ...string) {
	t.Helper()
	err := testutil.Poll(5*time.Second, func() error {
	next:
		for _, d := range diagnostics(t) {
			for _, w := range want {
				if !strings.Contains(d, w) {
					continue next
				}
			}
			return nil
		}
		return fmt.Errorf("no diagnostic with %q among %q", want, diagnostics(t))
	})
	if err != nil {
		t.Error(err)
	}
}

// writeAtomic replaces path's content at once, as editors save.
func writeAtomic(t *testing.T, path, body string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(filepath.Dir(path)), ".tmp-"+filepath.Base(path))
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestConfigSafetyUnderLoad: requests flow through the gateway to the app while the
// configuration directory is deleted and restored, a file becomes unreadable, a file is
// truncated, and an object is defined again in a new file (sorting before and after the
// original): not one request fails, and each mistake is reported naming the file.
func TestConfigSafetyUnderLoad(t *testing.T) {
	m := theMesh(t)
	cfg := m.Dir
	app := filepath.Join(cfg, "app.yaml")
	original := meshFiles()["app.yaml"]
	hold := func() { time.Sleep(time.Second) } // 20 polls of the control plane
	dup := `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: front
  namespace: default
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
  - route:
    - destination: {host: nowhere.default.svc.cluster.local, port: {number: 9080}}
`
	l := startLoad(4)
	steps := []struct {
		name string
		do   func(t *testing.T)
	}{
		{"directory deleted and restored", func(t *testing.T) {
			t.Helper()
			if err := os.Rename(cfg, cfg+".gone"); err != nil {
				t.Fatal(err)
			}
			waitDiagnostic(t, "keeping the last good configuration")
			hold()
			if err := os.Rename(cfg+".gone", cfg); err != nil {
				t.Fatal(err)
			}
		}},
		{"unreadable file", func(t *testing.T) {
			t.Helper()
			// A dangling symlink cannot be read (root reads files whatever their mode).
			if err := os.Rename(app, app+".away"); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(cfg, "nowhere"), app); err != nil {
				t.Fatal(err)
			}
			waitDiagnostic(t, "app.yaml", "keeping this file's last good objects")
			hold()
			if err := os.Remove(app); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(app+".away", app); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated file", func(t *testing.T) {
			t.Helper()
			cut := original[:strings.Index(original, "  name: app\n  namespace: default\n  annotations")+len("  na")]
			writeAtomic(t, app, cut)
			waitDiagnostic(t, "app.yaml:", "ends in the middle of line", "WorkloadEntry default/app")
			hold()
			writeAtomic(t, app, original)
		}},
		{"duplicate in a file sorting first", func(t *testing.T) {
			t.Helper()
			writeAtomic(t, filepath.Join(cfg, "a-dup.yaml"), dup)
			waitDiagnostic(t, "a-dup.yaml:", "VirtualService default/front", "already defined at gateway.yaml:")
			hold()
			if err := os.Remove(filepath.Join(cfg, "a-dup.yaml")); err != nil {
				t.Fatal(err)
			}
		}},
		{"duplicate in a file sorting last", func(t *testing.T) {
			t.Helper()
			writeAtomic(t, filepath.Join(cfg, "z-dup.yaml"), dup)
			waitDiagnostic(t, "z-dup.yaml:", "VirtualService default/front", "already defined at gateway.yaml:")
			hold()
			if err := os.Remove(filepath.Join(cfg, "z-dup.yaml")); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, st := range steps {
		before := l.failed.Load()
		t.Run(st.name, func(t *testing.T) {
			st.do(t)
			time.Sleep(300 * time.Millisecond)
			if n := l.failed.Load() - before; n > 0 {
				t.Errorf("%d requests failed", n)
			}
		})
	}
	l.end()
	if l.failed.Load() > 0 || l.ok.Load() < 500 {
		t.Errorf("%d requests succeeded, %d failed (want 0 failed of at least 500): %q", l.ok.Load(), l.failed.Load(), l.failures)
	}
	t.Logf("%d requests, 0 failed", l.ok.Load())
	m.settled(t, "config safety")
}
