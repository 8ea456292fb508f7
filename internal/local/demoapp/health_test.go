package demoapp

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func probeGet(t *testing.T, url, ua string) (int, string, error) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("User-Agent", ua)
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// startApp serves cfg on a fresh loopback port until the test ends; it returns the app and
// its base URL.
func startApp(t *testing.T, cfg Config) (*App, string) {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "h"
	}
	cfg.Listen = "127.0.0.1:1" // valid; the app serves on the listener below
	app, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return app, "http://" + ln.Addr().String()
}

func TestHealthPathAndProbeCount(t *testing.T) {
	app, base := startApp(t, Config{HealthPath: "/healthz"})
	if code, body, err := probeGet(t, base+"/healthz", "kube-probe/1.36"); err != nil || code != 200 || body != "success\n" {
		t.Fatalf("health: %d %q %v", code, body, err)
	}
	if code, _, err := probeGet(t, base+"/other", "kube-probe/1.36"); err != nil || code != 200 {
		t.Fatalf("other path: %d %v", code, err)
	}
	_, _, _ = probeGet(t, base+"/healthz", "curl/8")
	if n := app.health.probes.Load(); n != 2 {
		t.Fatalf("kubelet probes counted: %d, want 2 (curl is not the kubelet)", n)
	}
}

// TestFailModes: healthy first, then failing as the mode says, and Serve still ends
// cleanly (a refusing app keeps running until it is stopped).
func TestFailModes(t *testing.T) {
	for _, mode := range []string{FailOOM, FailRefuse, FailHang} {
		t.Run(mode, func(t *testing.T) {
			_, base := startApp(t, Config{HealthPath: "/healthz", FailMode: mode, FailAfter: 50 * time.Millisecond})
			url := base + "/healthz"
			if code, _, err := probeGet(t, url, "kube-probe/1.36"); err != nil || code != 200 {
				t.Fatalf("before failing: %d %v", code, err)
			}
			time.Sleep(200 * time.Millisecond)
			code, body, err := probeGet(t, url, "kube-probe/1.36")
			switch mode {
			case FailOOM:
				if code != 500 || !strings.Contains(body, OOMBody) {
					t.Errorf("oom: %d %q %v", code, body, err)
				}
			case FailRefuse:
				if err == nil || !strings.Contains(err.Error(), "refused") {
					t.Errorf("refuse: %d %v, want connection refused", code, err)
				}
			case FailHang:
				if err == nil || !strings.Contains(err.Error(), "Timeout") {
					t.Errorf("hang: %d %v, want a timeout", code, err)
				}
			}
		})
	}
}

func TestValidateHealth(t *testing.T) {
	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{Config{HealthPath: "healthz"}, "must start with /"},
		{Config{FailAfter: time.Second}, "--fail-after needs --fail-mode"},
		{Config{FailMode: "crash"}, `--fail-mode "crash"`},
		{Config{FailMode: FailOOM}, "needs --health-path"},
		{Config{FailMode: FailRefuse, FailAfter: -1}, "must not be negative"},
	} {
		tt.cfg.Name, tt.cfg.Listen = "a", "127.0.0.1:1"
		if err := tt.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", tt.cfg, err, tt.want)
		}
	}
}
