package agent

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/agent/footprint"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

func TestMemoryTuning(t *testing.T) {
	tests := []struct {
		name       string
		m          MemoryOptions
		configured bool
		wantLogs   []string
		cancel     bool // ends by the context, not by the first configuration
	}{
		{name: "off: nothing done", m: MemoryOptions{}, wantLogs: nil, cancel: true},
		{name: "released at start and after the first configuration",
			m: MemoryOptions{Tune: true, GCPercent: -1}, configured: true,
			wantLogs: []string{"when=start", "when=\"first configuration applied\""}},
		{name: "waits for the configuration until stopped",
			m: MemoryOptions{Tune: true, GCPercent: -1}, cancel: true,
			wantLogs: []string{"when=start"}},
		{name: "pages kept", m: MemoryOptions{Tune: true, GCPercent: -1, KeepStartupPages: true}, configured: true,
			wantLogs: []string{"gc=\"gc_percent=GOGC memory_limit=GOMEMLIMIT\""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf testutil.Buffer
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			var configured atomic.Bool
			stop := startMemoryTuning(context.Background(), tt.m, log, configured.Load)
			configured.Store(tt.configured)
			if !tt.cancel {
				last := tt.wantLogs[len(tt.wantLogs)-1]
				_ = testutil.Poll(10*time.Second, func() error { // the lines are checked below
					if !strings.Contains(buf.String(), last) {
						return errors.New("not logged yet")
					}
					return nil
				})
			}
			stop() // returns only once the goroutine has ended (goleak checks the rest)
			out := buf.String()
			for _, w := range tt.wantLogs {
				if !strings.Contains(out, w) {
					t.Errorf("log lacks %s:\n%s", w, out)
				}
			}
			if len(tt.wantLogs) == 0 && out != "" {
				t.Errorf("logged %q, want nothing", out)
			}
			if strings.Contains(out, "could not release") {
				t.Errorf("release failed: %s", out)
			}
		})
	}
}

// Where the kernel refuses page-by-page faults, the start-up release says so once at info
// level (the sidecar's default level); the later release only at debug.
func TestReleaseLogsWhyFaultAroundStays(t *testing.T) {
	var buf testutil.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	refused := footprint.Released{ResidentKiB: 100, FaultAround: errors.New("userfaultfd: operation not permitted")}
	logRelease(log, "start", refused)
	logRelease(log, "first configuration applied", refused)
	logRelease(log, "start", footprint.Released{ResidentKiB: 100})
	out := buf.String()
	if n := strings.Count(out, "level=INFO"); n != 1 || !strings.Contains(out, `reason="userfaultfd: operation not permitted"`) {
		t.Errorf("want one info line with the reason, got:\n%s", out)
	}
}
