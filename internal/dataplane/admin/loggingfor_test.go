package admin

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/logging"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

func levelOf(t *testing.T, reg *logging.Registry, name string) logging.Level {
	t.Helper()
	for _, nl := range reg.Levels() {
		if nl.Name == name {
			return nl.Level
		}
	}
	t.Fatalf("no logger %q", name)
	return 0
}

func post(t *testing.T, h http.Handler, query string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/logging?"+query, nil))
	return rec.Code, rec.Body.String()
}

func waitLevel(t *testing.T, reg *logging.Registry, name string, want logging.Level) {
	t.Helper()
	testutil.EventuallyWhy(t, 5*time.Second, fmt.Sprintf("logger %s at %s", name, want), func() (bool, string) {
		got := levelOf(t, reg, name)
		return got == want, fmt.Sprintf("it is %s", got)
	})
}

func TestLoggingForReverts(t *testing.T) {
	tests := []struct {
		name, query string
		changed     []string
	}{
		{"all", "level=debug&for=50ms", []string{"http", "router", "upstream"}},
		{"paths", "paths=http:trace,router:debug&for=50ms", []string{"http", "router"}},
		{"one", "for=50ms&router=debug", []string{"router"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := logging.NewRegistry(io.Discard, logging.Warning, false)
			h := New(Options{Logging: reg})
			code, body := post(t, h, tt.query)
			if code != http.StatusOK {
				t.Fatalf("POST %s: %d %s", tt.query, code, body)
			}
			for _, n := range tt.changed {
				if levelOf(t, reg, n) == logging.Warning {
					t.Errorf("%s not changed", n)
				}
			}
			if len(reg.Pending()) == 0 {
				t.Error("no revert pending")
			}
			for _, n := range tt.changed {
				waitLevel(t, reg, n, logging.Warning)
			}
			if p := reg.Pending(); len(p) != 0 {
				t.Errorf("revert still pending after it ran: %+v", p)
			}
		})
	}
}

func TestLoggingForCancelledByExplicitChange(t *testing.T) {
	reg := logging.NewRegistry(io.Discard, logging.Warning, false)
	h := New(Options{Logging: reg})
	if code, body := post(t, h, "level=debug&for=1h"); code != 200 {
		t.Fatal(code, body)
	}
	if code, body := post(t, h, "level=info"); code != 200 {
		t.Fatal(code, body)
	}
	if p := reg.Pending(); len(p) != 0 {
		t.Fatalf("an explicit change must cancel the pending revert: %+v", p)
	}
	if got := levelOf(t, reg, "http"); got != logging.Info {
		t.Fatalf("http = %s, want info", got)
	}
}

// A second timed change does not cancel the first one's revert: each reverts what it set,
// and /logging lists what is pending.
func TestLoggingForEachChangeReverts(t *testing.T) {
	reg := logging.NewRegistry(io.Discard, logging.Warning, false)
	h := New(Options{Logging: reg})
	post(t, h, "router=debug&for=1h")
	_, body := post(t, h, "paths=http:trace,router:trace&for=50ms")
	if !strings.Contains(body, "pending reverts:\n  http: warning at ") || !strings.Contains(body, "  router: debug at ") ||
		!strings.Contains(body, ", then warning at ") {
		t.Errorf("the listing does not show the pending reverts:\n%s", body)
	}
	waitLevel(t, reg, "http", logging.Warning) // the 50ms change ended: http back to warning,
	waitLevel(t, reg, "router", logging.Debug) // router back to the 1h change's debug
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/logging", nil))
	if got := rec.Body.String(); !strings.Contains(got, "pending reverts:\n  router: warning at ") || strings.Contains(got, "http: warning at") {
		t.Errorf("after the short change ended, /logging shows:\n%s", got)
	}
}

func TestLoggingForErrors(t *testing.T) {
	reg := logging.NewRegistry(io.Discard, logging.Warning, false)
	h := New(Options{Logging: reg})
	for _, q := range []string{"level=debug&for=x", "level=debug&for=-1s", "level=debug&for=48h", "for=5m"} {
		code, body := post(t, h, q)
		if code != http.StatusBadRequest || !strings.Contains(body, "usage:") {
			t.Errorf("%s: %d %q, want 400 with usage", q, code, body)
		}
		if levelOf(t, reg, "http") != logging.Warning {
			t.Errorf("%s changed a level", q)
		}
	}
}
