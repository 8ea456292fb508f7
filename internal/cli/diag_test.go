package cli

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/testutil"
)

// fixtureServer serves the admin and debug API fixtures captured from a live mesh
// (test/diag TestCaptureFixtures) on 127.0.94.200, as a sidecar admin API and the control
// plane's debug port would. It records POSTs.
type fixtureServer struct {
	addr  string
	mu    sync.Mutex
	posts []string
}

func startFixtures(t *testing.T) *fixtureServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.94.200:15014") // fixed: proxy-status prints the address
	if err != nil {
		t.Fatal(err)
	}
	fs := &fixtureServer{addr: ln.Addr().String()}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", "fixtures", name))
		if err != nil {
			t.Error(err)
		}
		return b
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/config_dump", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(read("curl.config_dump.json")) })
	mux.HandleFunc("/clusters", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(read("curl.clusters.json")) })
	mux.HandleFunc("/logging", func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			fs.mu.Lock()
			fs.posts = append(fs.posts, r.URL.RawQuery)
			fs.mu.Unlock()
		}
		_, _ = w.Write(read("curl.logging.txt"))
	})
	mux.HandleFunc("/debug/syncz", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(read("syncz.json")) })
	mux.HandleFunc("/debug/config_dump", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(read("curl.cp_config_dump.json")) })
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return fs
}

// run executes the CLI with args and returns its output and error.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := NewRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	testutil.Golden(t, filepath.Join("testdata", name+".golden"), []byte(got))
}

func goldenName(args []string) string {
	return strings.NewReplacer(" ", "_", "/", "_", ":", "_", "=", "_", "--", "", "|", "_").Replace(strings.Join(args, " "))
}

func TestProxyConfigGolden(t *testing.T) {
	fs := startFixtures(t)
	cases := [][]string{
		{"proxy-config", "listeners", "curl"},
		{"proxy-config", "listeners", "curl", "-o", "short"},
		{"proxy-config", "listeners", "curl", "--port", "9080", "-o", "json"},
		{"proxy-config", "routes", "curl"},
		{"proxy-config", "routes", "curl", "-o", "short"},
		{"proxy-config", "clusters", "curl"},
		{"proxy-config", "clusters", "curl", "--fqdn", "reviews", "--subset", "v3"},
		{"proxy-config", "clusters", "curl", "--direction", "outbound", "--port", "9080", "-o", "short"},
		{"proxy-config", "clusters", "curl", "--fqdn", "ratings", "-o", "yaml"},
		{"proxy-config", "endpoints", "curl"},
		{"proxy-config", "endpoints", "curl", "--cluster", "outbound|9080|v3|reviews.default.svc.cluster.local"},
		{"proxy-config", "endpoints", "curl", "--address", "127.0.94.12", "-o", "json"},
		{"proxy-config", "log", "curl"},
	}
	for _, args := range cases {
		t.Run(goldenName(args), func(t *testing.T) {
			got, err := run(t, append(args, "--discovery-debug", fs.addr, "--admin-port", portOf(fs.addr), "--admin", fs.addr)...)
			if err != nil {
				t.Fatalf("%v\n%s", err, got)
			}
			golden(t, "proxyconfig/"+goldenName(args), got)
		})
	}
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

func TestProxyStatusGolden(t *testing.T) {
	fs := startFixtures(t)
	at, _ := time.Parse(time.RFC3339, "2026-11-21T22:40:00Z")
	now = func() time.Time { return at }
	t.Cleanup(func() { now = time.Now })
	cases := [][]string{
		{"proxy-status"},
		{"proxy-status", "curl"},
	}
	for _, args := range cases {
		t.Run(goldenName(args), func(t *testing.T) {
			got, err := run(t, append(args, "--discovery-debug", fs.addr, "--admin", fs.addr)...)
			if err != nil {
				t.Fatalf("%v\n%s", err, got)
			}
			golden(t, "proxystatus/"+goldenName(args), got)
		})
	}
}

func TestWhyGolden(t *testing.T) {
	fs := startFixtures(t)
	cases := [][]string{
		{"why", "curl", "http://reviews:9080/v3"},
		{"why", "curl", "reviews:9080/", "-H", "end-user: jason"},
		{"why", "curl", "http://reviews:9080/reviews"},
		{"why", "curl", "http://ratings:9080/ratings", "-X", "POST"},
		{"why", "curl", "http://example.com:8080/"},
		{"why", "curl", "http://nope.default:9080/"},
		{"why", "curl", "http://reviews:9080/v3", "-o", "json"},
	}
	for _, args := range cases {
		t.Run(goldenName(args), func(t *testing.T) {
			got, err := run(t, append(args, "--discovery-debug", fs.addr, "--admin", fs.addr)...)
			if err != nil {
				t.Fatalf("%v\n%s", err, got)
			}
			golden(t, "why/"+goldenName(args), got)
		})
	}
}
