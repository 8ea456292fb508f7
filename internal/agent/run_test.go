package agent

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/testutil"
)

func get(t *testing.T, method, u string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(method, u, nil)
	resp, err := (&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// A whole sidecar with no control plane: the status server and the 15021 listener come
// up first and say why the sidecar is not ready; app probes and the metrics merge work
// without any xDS configuration; /quitquitquit ends Run.
func TestRunStatusServer(t *testing.T) {
	appLn, err := net.Listen("tcp", "127.0.91.31:8080")
	if err != nil {
		t.Fatal(err)
	}
	app := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			_, _ = io.WriteString(w, "fine")
		case "/metrics":
			_, _ = io.WriteString(w, "# TYPE app_requests counter\napp_requests 7\n")
		}
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = app.Serve(appLn) }()
	defer app.Close()

	logs := &testutil.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{
			IP: netip.MustParseAddr("127.0.91.30"), Workload: "web", Discovery: "127.0.91.30:1",
			LogOutput: logs, DrainDuration: 100 * time.Millisecond, Version: "0123abc/v9.9.9/Clean/RELEASE/go1.99",
			AgentOptions: AgentOptions{
				AppProbers:    `{"/app-health/web/livez":{"httpGet":{"path":"/ok","port":8080}},"/app-health/web/readyz":{"tcpSocket":{"port":8081},"timeoutSeconds":1}}`,
				AppAddress:    netip.MustParseAddr("127.0.91.31"),
				ProbeSourceV4: netip.MustParseAddr("127.0.91.36"),
				AppMetricsURL: "http://127.0.91.31:8080/metrics",
			},
		})
	}()
	const st = "http://127.0.91.30:15020"
	testutil.Eventually(t, 5*time.Second, "status server", func() bool { return dialable("127.0.91.30:15020") && dialable("127.0.91.30:15021") })

	const notReady = "config not received from XDS server (is the control plane running?)\n"
	if code, _, body := get(t, "GET", st+"/healthz/ready"); code != 503 || body != notReady {
		t.Fatalf("15020 /healthz/ready: %d %q", code, body)
	}
	if code, _, body := get(t, "GET", "http://127.0.91.30:15021/healthz/ready"); code != 503 || body != notReady {
		t.Fatalf("15021 /healthz/ready (through the proxy): %d %q", code, body)
	}
	if code, _, _ := get(t, "GET", "http://127.0.91.30:15021/other"); code != 404 {
		t.Fatalf("15021 routes only /healthz/ready: %d", code)
	}
	if code, _, body := get(t, "GET", st+"/app-health/web/livez"); code != 200 || body != "fine" {
		t.Fatalf("livez: %d %q", code, body)
	}
	code, h, _ := get(t, "GET", st+"/app-health/web/readyz")
	if want := "readyz for container web: tcp 127.0.91.31:8081: connect: connection refused (nothing listens on the port)"; code != 502 || h.Get("x-lucid-probe-error") != want {
		t.Fatalf("readyz: %d %q", code, h.Get("x-lucid-probe-error"))
	}
	if code, _, body := get(t, "GET", st+"/app-health/other/livez"); code != 400 || body != "app prober config does not exists for /app-health/other/livez\n" {
		t.Fatalf("unknown prober: %d %q", code, body)
	}
	_, _, metrics := get(t, "GET", st+"/stats/prometheus")
	for _, want := range []string{
		`lucid_app_probe_total{container="web",probe="livez",reason="ok",result="success"} 1`,
		`lucid_app_probe_total{container="web",probe="readyz",reason="refused",result="failure"} 1`,
		"\napp_requests 7\n",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/stats/prometheus lacks %q", want)
		}
	}
	if !strings.Contains(logs.String(), "app probe failed") {
		t.Errorf("no probe warning in the log:\n%s", logs.String())
	}
	// The build, as `lucid version` knows it, in /server_info and the bootstrap node.
	if _, _, info := get(t, "GET", "http://"+testutil.Admin("127.0.91.30")+"/server_info"); !strings.Contains(info, `"version": "0123abc/v9.9.9/Clean/RELEASE/go1.99"`) {
		t.Errorf("/server_info lacks the version:\n%s", info)
	}
	if _, _, dump := get(t, "GET", "http://"+testutil.Admin("127.0.91.30")+"/config_dump"); !strings.Contains(dump, `"revision.sha": "0123abc"`) ||
		!strings.Contains(dump, `"major_number": 9`) || !strings.Contains(dump, `"ssl.version": "go1.99"`) {
		t.Errorf("/config_dump's bootstrap lacks the version:\n%.2000s", dump)
	}
	if l := logs.String(); strings.Contains(l, `level=warning msg="proxy is not ready"`) || strings.Contains(l, `level=warning msg="xds stream closed`) {
		t.Errorf("a sidecar that has just started warned (the control plane may still be coming up):\n%s", logs.String())
	}
	if code, _, _ := get(t, "GET", st+"/quitquitquit"); code != 405 {
		t.Fatalf("GET /quitquitquit: %d", code)
	}
	if code, _, body := get(t, "POST", st+"/quitquitquit"); code != 200 || body != "OK" {
		t.Fatalf("POST /quitquitquit: %d %q", code, body)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after /quitquitquit")
	}
}

func TestRunRejectsBadProbers(t *testing.T) {
	err := Run(context.Background(), Options{IP: netip.MustParseAddr("127.0.91.32"), Workload: "web", LogOutput: io.Discard,
		AgentOptions: AgentOptions{AppProbers: `{"/app-health/web/livez":{"httpGet":{"port":"http"}}}`}})
	want := `ISTIO_KUBE_APP_PROBERS: key "/app-health/web/livez": httpGet.port: invalid prober config for /app-health/web/livez, the port must be int type`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}
