package diag

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/diag/inspect"
	"github.com/lucid-mesh/lucid/internal/diag/simulate"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

// TestGatewayDiagnostics runs the diagnostics CLI against a live gateway: `why` predicts
// what real requests through the gateway get (forwarded, 404 NR, 503 UH, 301 to https,
// connections closed by filter chain selection or the TLS handshake, with the counter the
// gateway increments), proxy-status shows it synced, proxy-config shows its listeners and
// routes with Istio's names.
func TestGatewayDiagnostics(t *testing.T) {
	m := gatewayMesh(t)
	t.Run("why agrees with live requests", func(t *testing.T) { testGatewayWhy(t, m) })
	t.Run("proxy-status", func(t *testing.T) {
		out, code := lucid(t, "proxy-status", "--discovery-debug", gwDebugAddr)
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, out)
		}
		var row string
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, gwName+" ") {
				row = l
			}
		}
		if strings.Count(row, "SYNCED (") != 4 {
			t.Errorf("gateway not SYNCED on all four types:\n%s", out)
		}
		out, code = lucid(t, "proxy-status", gwName, "--discovery-debug", gwDebugAddr)
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, out)
		}
		for _, s := range []string{"Clusters Match", "Listeners Match", "Routes Match", "Endpoints Match"} {
			if !strings.Contains(out, s) {
				t.Errorf("proxy-status %s lacks %q:\n%s", gwName, s, out)
			}
		}
	})
	t.Run("proxy-config", func(t *testing.T) {
		out, code := lucid(t, "proxy-config", "listeners", gwName, "--discovery-debug", gwDebugAddr)
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, out)
		}
		for _, s := range []string{
			"0.0.0.0   8080  ALL                         Route: http.8080",
			"SNI: web.example.com",
			"Route: https.8443.https.ingress.istio-system",
			"SNI: mtls.example.com",
			"Route: https.8443.https-mtls.ingress.istio-system",
		} {
			if !strings.Contains(out, s) && !strings.Contains(squeeze(out), squeeze(s)) {
				t.Errorf("listeners lack %q:\n%s", s, out)
			}
		}
		out, code = lucid(t, "proxy-config", "routes", gwName, "--discovery-debug", gwDebugAddr)
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, out)
		}
		for _, s := range []string{"http.8080 *:8080 * /web* web.default", "http.8081 secure.example.com:8081 secure.example.com /web* web.default",
			"https.8443.https.ingress.istio-system web.example.com:8443 web.example.com /broken* web.default"} {
			if !strings.Contains(squeeze(out), s) {
				t.Errorf("routes lack %q:\n%s", s, out)
			}
		}
	})
}

// squeeze collapses runs of spaces, so table rows compare without their padding.
func squeeze(s string) string { return strings.Join(strings.Fields(s), " ") }

// gwCase is one request to the gateway and what the client sees.
type gwCase struct {
	name    string
	url     string
	why     []string // extra arguments for why
	client  func() *http.Client
	status  int    // 0: the connection fails without a response
	closed  string // part of why's explanation of a closed connection
	counter string // the gateway stat the failure increments
}

func testGatewayWhy(t *testing.T, m *gwMesh) {
	t.Helper()
	plain := func() *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: gwDialer},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	tlsClient := func(alpn ...string) func() *http.Client {
		return func() *http.Client {
			tr := &http.Transport{DialContext: gwDialer, TLSClientConfig: m.tlsConfig(alpn...), ForceAttemptHTTP2: true}
			return &http.Client{Timeout: 5 * time.Second, Transport: tr}
		}
	}
	cases := []gwCase{
		{name: "forwarded", url: "http://" + gwIP + ":8080/web/a", client: plain, status: 200},
		{name: "no route 404 NR", url: "http://" + gwIP + ":8080/nothing", client: plain, status: 404},
		{name: "empty subset 503 UH", url: "http://" + gwIP + ":8080/broken", client: plain, status: 503},
		{name: "httpsRedirect 301", url: "http://secure.example.com:8081/web?x=1", client: plain, status: 301},
		{name: "https SNI, h2", url: "https://web.example.com:8443/web/b", client: tlsClient("h2", "http/1.1"), status: 200},
		{name: "https 503 UH", url: "https://web.example.com:8443/broken", client: tlsClient("h2", "http/1.1"), status: 503},
		{name: "https, SNI matches no chain", url: "https://other.example.com:8443/web", client: tlsClient("h2", "http/1.1"),
			closed: "filter_chain_not_found"},
		{name: "plaintext to the TLS port", url: "http://web.example.com:8443/web", client: plain, closed: "filter_chain_not_found"},
		{name: "MUTUAL without client certificate", url: "https://mtls.example.com:8443/web", client: tlsClient("http/1.1"),
			closed: "requires a client certificate", counter: "listener.0.0.0.0_8443.ssl.fail_verify_no_cert"},
		{name: "no listener", url: "http://" + gwIP + ":8099/", client: plain, closed: "connection refused"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := gatewayStat(t, tc.counter)
			args := append([]string{"why", gwName, tc.url, "-o", "json", "--discovery-debug", gwDebugAddr}, tc.why...)
			out, code := lucid(t, args...)
			if code != 0 {
				t.Fatalf("why: exit %d\n%s", code, out)
			}
			var tr simulate.Trace
			if err := json.Unmarshal([]byte(out), &tr); err != nil {
				t.Fatalf("why -o json: %v\n%s", err, out)
			}
			c := tc.client()
			defer c.CloseIdleConnections()
			resp, err := c.Get(tc.url)
			if tc.status == 0 {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("live request got %d, want the connection to fail", resp.StatusCode)
				}
				if tr.Outcome.Closed == "" || !strings.Contains(tr.Outcome.Closed, tc.closed) {
					t.Errorf("live request failed (%v); why predicts %+v, want a closed connection mentioning %q", err, tr.Outcome, tc.closed)
				}
				if tc.counter != "" {
					if !strings.Contains(tr.Outcome.Counter, tc.counter) {
						t.Errorf("why names counter %q, want %q", tr.Outcome.Counter, tc.counter)
					}
					// The client may see the failure before the gateway has counted it (TLS 1.3:
					// the server checks the client's certificate after the client finished).
					var after uint64
					testutil.Eventually(t, 5*time.Second, tc.counter+" counted", func() bool {
						after = gatewayStat(t, tc.counter)
						return after != before
					})
					if after != before+1 {
						t.Errorf("%s went from %d to %d, want +1", tc.counter, before, after)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("live request: %v (why predicted %+v)", err, tr.Outcome)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("live status %d, want %d (why predicted %+v)", resp.StatusCode, tc.status, tr.Outcome)
			}
			switch tc.status {
			case 200:
				if !tr.Outcome.Forwarded() {
					t.Errorf("why does not predict forwarding: %+v", tr.Outcome)
				}
			case 301:
				loc := resp.Header.Get("Location")
				if tr.Outcome.Status != 301 || loc == "" || !strings.Contains(tr.Outcome.Note, "redirect to "+loc+" ") || !strings.Contains(tr.Outcome.Note, "require_tls") {
					t.Errorf("live 301 to %q; why predicts %+v", loc, tr.Outcome)
				}
				if resp.Header.Get("X-Lucid-Error") != "" {
					t.Errorf("301 carries x-lucid-error %q", resp.Header.Get("X-Lucid-Error"))
				}
			default:
				if tr.Outcome.Status != resp.StatusCode {
					t.Errorf("why predicts %d, live %d", tr.Outcome.Status, resp.StatusCode)
				}
				if got := resp.Header.Get("X-Lucid-Error"); got != tr.Outcome.LucidError {
					t.Errorf("live x-lucid-error %q\nwhy predicts      %q", got, tr.Outcome.LucidError)
				}
			}
			if strings.HasPrefix(tc.url, "https") {
				if want := "ALPN " + alpnOf(resp); !strings.Contains(tr.TLS, want) {
					t.Errorf("live connection negotiated %s; why says tls %q", want, tr.TLS)
				}
			}
		})
	}
	testutil.EventuallyWhy(t, 5*time.Second, "the gateway's 404 NR and 503 UH access-log lines", func() (bool, string) {
		log := m.accessLog(t)
		return strings.Contains(log, " 404 NR ") && strings.Contains(log, " 503 UH "), "the log:\n" + log
	})
}

func alpnOf(resp *http.Response) string {
	if resp.ProtoMajor == 2 {
		return "h2"
	}
	return "http/1.1"
}

// gatewayStat reads one counter from the gateway's admin /stats (0 when absent).
func gatewayStat(t *testing.T, name string) uint64 {
	t.Helper()
	if name == "" {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := (&inspect.Client{}).Get(ctx, testutil.Admin(gwIP), "/stats")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ": "); ok && k == name {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// TestCaptureGatewayFixtures refreshes the gateway's admin and debug API fixtures the
// CLI's golden tests read (go test ./test/diag -run CaptureGatewayFixtures -capture
// ../../internal/cli/testdata/fixtures). The mesh's temporary directory is replaced by
// /lucid-diag in them, so the goldens do not change with it.
func TestCaptureGatewayFixtures(t *testing.T) {
	if *capture == "" {
		t.Skip("-capture not set")
	}
	m := gatewayMesh(t)
	// Some traffic, so the clusters' stats are not all zero.
	c := &http.Client{Transport: &http.Transport{DialContext: gwDialer}, Timeout: 5 * time.Second}
	if resp, err := c.Get("http://" + gwIP + ":8080/web"); err == nil {
		resp.Body.Close()
	}
	ctx := context.Background()
	ic := &inspect.Client{}
	get := func(addr, path, file string) {
		b, err := ic.Get(ctx, addr, path)
		if err != nil {
			t.Fatal(err)
		}
		b = []byte(strings.ReplaceAll(string(b), m.dir, "/lucid-diag"))
		if err := os.WriteFile(filepath.Join(*capture, file), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(*capture, 0o755); err != nil {
		t.Fatal(err)
	}
	admin := testutil.Admin(gwIP)
	get(admin, "/config_dump?include_eds", "gateway.config_dump.json")
	get(admin, "/clusters?format=json", "gateway.clusters.json")
	get(gwDebugAddr, "/debug/syncz", "gateway.syncz.json")
	get(gwDebugAddr, "/debug/config_dump?proxyID=router~"+gwIP+"~istio-ingressgateway.istio-system~istio-system.svc.cluster.local", "gateway.cp_config_dump.json")
}
