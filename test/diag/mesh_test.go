package diag

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/testutil/meshtest"
)

// The test mesh: examples/bookinfo-lite with its addresses moved into 127.0.94.0/24 by
// meshtest.Example (sidecars 127.0.10.N → 127.0.94.1N, apps 127.0.20.N → 127.0.94.2N, so
// curl is 127.0.94.19) and the control plane's debug port on 127.0.94.1:15014.
const (
	debugAddr = "127.0.94.1:15014"
	curlIP    = "127.0.94.19"
)

// workloads are the example's, set when the shared mesh starts.
var workloads []meshtest.Workload

// mesh is the running test mesh; tests share it (they only read it).
type mesh struct {
	*meshtest.Mesh
	logDir string // the sidecars' access logs, one file per workload
}

var shared *mesh

func TestMain(m *testing.M) { os.Exit(meshtest.SharedMain(m).Run()) }

// bookinfo is examples/bookinfo-lite in 127.0.94.0/24 without its gateway (these tests
// look at sidecars): its files and its workloads.
func bookinfo(t testing.TB) (map[string]string, []meshtest.Workload) {
	t.Helper()
	return meshtest.Example(t, "bookinfo-lite", 94, "gateway.yaml")
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
	meshtest.Shared(t, func(t testing.TB) *meshtest.Mesh {
		t.Helper()
		logDir := t.TempDir()
		files, ws := bookinfo(t)
		for i := range ws {
			ws[i].AccessLog = filepath.Join(logDir, ws[i].Name+".log")
		}
		m := meshtest.StartWith(t, meshtest.Options{
			GRPCAddr: "127.0.94.1:0", DebugAddr: debugAddr,
			PollInterval: 50 * time.Millisecond, Debounce: 20 * time.Millisecond,
		}, files, ws)
		workloads, shared = ws, &mesh{Mesh: m, logDir: logDir}
		return m
	})
	return shared
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
