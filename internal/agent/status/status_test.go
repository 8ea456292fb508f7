package status

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
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
