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
		name              string
		m                 MemoryOptions
		applied, complete bool
		wait              time.Duration // for the rest of the first configuration
		wantLogs          []string
		notLogged         string
		cancel            bool // ends by the context, not by the first configuration
	}{
		{name: "off: nothing done", m: MemoryOptions{}, wantLogs: nil, cancel: true},
		{name: "released at start and when the first configuration is complete",
			m: MemoryOptions{Tune: true, GCPercent: -1}, applied: true, complete: true, wait: time.Hour,
			wantLogs: []string{"when=start", `when="first configuration complete"`}},
		// Routes or endpoints still to come: decoding them touches more pages, so the
		// release waits for them, though not for ever.
		{name: "an incomplete configuration is waited for, a while",
			m: MemoryOptions{Tune: true, GCPercent: -1}, applied: true, wait: 500 * time.Millisecond,
			wantLogs: []string{"when=start", `when="first configuration applied, still incomplete"`}},
		{name: "an incomplete configuration is not released on",
			m: MemoryOptions{Tune: true, GCPercent: -1}, applied: true, wait: time.Hour, cancel: true,
			wantLogs: []string{"when=start"}, notLogged: "first configuration"},
		{name: "waits for the configuration until stopped",
			m: MemoryOptions{Tune: true, GCPercent: -1}, wait: 100 * time.Millisecond, cancel: true,
			wantLogs: []string{"when=start"}, notLogged: "first configuration"},
		{name: "pages kept", m: MemoryOptions{Tune: true, GCPercent: -1, KeepStartupPages: true}, applied: true, complete: true,
			wantLogs: []string{"gc=\"gc_percent=GOGC memory_limit=GOMEMLIMIT\""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf testutil.Buffer
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			var applied, complete atomic.Bool
			progress := func() (bool, bool) { return applied.Load(), complete.Load() }
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				tuneMemory(ctx, tt.m, log, progress, tt.wait)
			}()
			applied.Store(tt.applied)
			complete.Store(tt.complete)
			if tt.cancel {
				time.Sleep(3 * configPoll) // polls that must not release
			} else {
				last := tt.wantLogs[len(tt.wantLogs)-1]
				_ = testutil.Poll(10*time.Second, func() error { // the lines are checked below
					if !strings.Contains(buf.String(), last) {
						return errors.New("not logged yet")
					}
					return nil
				})
			}
			cancel()
			<-done
			out := buf.String()
			for _, w := range tt.wantLogs {
				if !strings.Contains(out, w) {
					t.Errorf("log lacks %s:\n%s", w, out)
				}
			}
			if tt.notLogged != "" && strings.Contains(out, tt.notLogged) {
				t.Errorf("log has %q:\n%s", tt.notLogged, out)
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

// startMemoryTuning's func stops a tuning still waiting for the first configuration: once
// it returns, the configuration is polled no more (goleak checks the goroutine is gone).
func TestMemoryTuningStops(t *testing.T) {
	var polls atomic.Int32
	stop := startMemoryTuning(context.Background(), MemoryOptions{Tune: true, GCPercent: -1}, slog.New(slog.DiscardHandler),
		func() (bool, bool) { polls.Add(1); return false, false })
	_ = testutil.Poll(10*time.Second, func() error { // waiting: polled at least once
		if polls.Load() == 0 {
			return errors.New("not polled yet")
		}
		return nil
	})
	stop()
	n := polls.Load()
	time.Sleep(3 * configPoll)
	if got := polls.Load(); n == 0 || got != n {
		t.Fatalf("polled %d times before stop returned and %d after; want some, then none", n, got-n)
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
