package cli

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// startGatewayFixtures serves the gateway's admin and debug API fixtures captured from a
// live gateway (test/diag TestCaptureGatewayFixtures) on 127.0.83.200:15014.
func startGatewayFixtures(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.83.200:15014") // fixed: proxy-status prints the address
	if err != nil {
		t.Fatal(err)
	}
	serve := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			b, err := os.ReadFile(filepath.Join("testdata", "fixtures", name))
			if err != nil {
				t.Error(err)
			}
			_, _ = w.Write(b)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/config_dump", serve("gateway.config_dump.json"))
	mux.HandleFunc("/clusters", serve("gateway.clusters.json"))
	mux.HandleFunc("/debug/syncz", serve("gateway.syncz.json"))
	mux.HandleFunc("/debug/config_dump", serve("gateway.cp_config_dump.json"))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

const gwName = "istio-ingressgateway.istio-system"

// TestGatewayGolden: proxy-config, proxy-status and why on an ingress gateway's captured
// configuration (Gateway istio-system/ingress: HTTP 8080, HTTP 8081 with httpsRedirect,
// HTTPS 8443 SIMPLE for web.example.com and MUTUAL for mtls.example.com).
func TestGatewayGolden(t *testing.T) {
	addr := startGatewayFixtures(t)
	at, _ := time.Parse(time.RFC3339, "2026-11-22T00:51:00Z")
	now = func() time.Time { return at }
	t.Cleanup(func() { now = time.Now })
	cases := [][]string{
		{"proxy-config", "listeners", gwName},
		{"proxy-config", "listeners", gwName, "-o", "short"},
		{"proxy-config", "routes", gwName},
		{"proxy-config", "routes", gwName, "-o", "short"},
		{"proxy-config", "clusters", gwName},
		{"proxy-config", "endpoints", gwName},
		{"proxy-status"},
		{"proxy-status", gwName},
		{"why", gwName, "http://127.0.0.1:8080/web"},
		{"why", gwName, "http://127.0.0.1:8080/nothing"},
		{"why", gwName, "http://127.0.0.1:8080/broken"},
		{"why", gwName, "http://secure.example.com:8081/web/a"},
		{"why", gwName, "https://web.example.com:8443/web"},
		{"why", gwName, "https://web.example.com:8443/broken", "-o", "json"},
		{"why", gwName, "https://127.0.0.1:8443/web"},
		{"why", gwName, "https://127.0.0.1:8443/web", "--sni", "web.example.com", "--alpn", "http/1.1"},
		{"why", gwName, "https://mtls.example.com:8443/web"},
		{"why", gwName, "https://mtls.example.com:8443/web", "--client-cert"},
		{"why", gwName, "http://web.example.com:8443/web"},
		{"why", gwName, "http://127.0.0.1:9999/"},
	}
	for _, args := range cases {
		t.Run(goldenName(args), func(t *testing.T) {
			got, err := run(t, append(args, "--discovery-debug", addr, "--admin", addr)...)
			if err != nil {
				t.Fatalf("%v\n%s", err, got)
			}
			golden(t, "gateway/"+goldenName(args), got)
		})
	}
}
