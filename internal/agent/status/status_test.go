package status

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestReadyAndTransitionsLogged(t *testing.T) {
	var logs bytes.Buffer
	err := errors.New("config not received from XDS server")
	s := New(func() error { return err }, slog.New(slog.NewTextHandler(&logs, nil)))
	get := func() (int, string) {
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/healthz/ready", nil))
		b, _ := io.ReadAll(w.Result().Body)
		return w.Code, string(b)
	}
	for i := 0; i < 3; i++ {
		if code, body := get(); code != 503 || !strings.Contains(body, "config not received") {
			t.Fatalf("not ready: %d %q", code, body)
		}
	}
	err = nil
	for i := 0; i < 3; i++ {
		if code, _ := get(); code != 200 {
			t.Fatalf("ready: %d", code)
		}
	}
	out := logs.String()
	if strings.Count(out, "proxy is not ready") != 1 || strings.Count(out, "proxy is ready") != 1 {
		t.Fatalf("want one log line per transition, got:\n%s", out)
	}
}

// TestStartGrace: while the sidecar starts, "not ready" is expected and is no warning; a
// reason still there when the grace is over is warned about once; readiness is logged.
func TestStartGrace(t *testing.T) {
	var logs bytes.Buffer
	err := errors.New("config not received from XDS server (is the control plane running?)")
	s, _ := NewServer(Options{Ready: func() error { return err }, StartGrace: time.Minute,
		Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	check := func() {
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/healthz/ready", nil))
	}
	check()
	check()
	if out := logs.String(); strings.Contains(out, "level=WARN") || strings.Count(out, "not ready yet (starting)") != 1 {
		t.Fatalf("within the start grace, want one debug line and no warning:\n%s", out)
	}
	s.started = time.Now().Add(-2 * time.Minute) // the grace is over
	check()
	check()
	if out := logs.String(); strings.Count(out, "level=WARN msg=\"proxy is not ready\"") != 1 {
		t.Fatalf("after the start grace, want one warning for the same reason:\n%s", out)
	}
	err = nil
	check()
	if out := logs.String(); !strings.Contains(out, "proxy is ready") {
		t.Fatalf("no readiness line:\n%s", out)
	}

	// Ready within the grace: no warning at all.
	logs.Reset()
	err = errors.New("config not received from XDS server (is the control plane running?)")
	s, _ = NewServer(Options{Ready: func() error { return err }, StartGrace: time.Minute,
		Log: slog.New(slog.NewTextHandler(&logs, nil))})
	check()
	err = nil
	check()
	if out := logs.String(); strings.Contains(out, "WARN") || !strings.Contains(out, "proxy is ready") {
		t.Fatalf("a normal start logs only readiness:\n%s", out)
	}
}
