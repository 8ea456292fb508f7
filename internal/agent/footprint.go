package agent

import (
	"context"
	"log/slog"
	"time"

	"github.com/lucid-mesh/lucid/internal/agent/footprint"
)

// MemoryOptions are the sidecar process's memory settings (internal/agent/footprint). They act
// on the whole process, so they apply only with Tune set: `lucid sidecar` sets it, while
// tests that run several sidecars in one process leave it off. With Tune and the other
// fields zero: GC target 20 % (GOGC, when set, wins), no soft memory limit, and the
// executable's startup pages released at start and once more when the first
// configuration is complete.
type MemoryOptions struct {
	Tune             bool
	GCPercent        int   // 0: footprint.DefaultGCPercent; <0: leave Go's default
	MemoryLimit      int64 // soft limit in bytes on the Go runtime's memory; 0: none
	KeepStartupPages bool  // do not release the executable's pages touched at startup
}

// configPoll is how often tuneMemory checks whether the first configuration is complete.
const configPoll = 100 * time.Millisecond

// configWait is how long tuneMemory waits, after the first configuration is applied, for
// the rest of it (the routes and endpoints its listeners and clusters name) before it
// releases the pages anyway: a cluster whose endpoints never come must not keep the
// start-up pages resident for the life of the process.
const configWait = 5 * time.Second

// ConfigProgress says whether a snapshot from xDS has been applied, and whether every
// resource it names has come too (the proxy's readiness, less identity and draining).
type ConfigProgress func() (applied, complete bool)

// startMemoryTuning runs tuneMemory in the background; the returned func stops it and
// waits for it (call it when Run returns).
func startMemoryTuning(ctx context.Context, m MemoryOptions, log *slog.Logger, progress ConfigProgress) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tuneMemory(ctx, m, log, progress, configWait)
	}()
	return func() {
		cancel()
		<-done
	}
}

// tuneMemory applies the GC settings, releases the pages the process touched while
// starting, and releases them once more when the first configuration is complete: its
// decoding initialises protobuf tables the sidecar uses again only on the next change.
// Released on the first snapshot alone, the pages that decoding the routes and endpoints
// after it touched stayed resident (up to 2 MiB more at load, in one start of a few). It
// waits at most wait after the first snapshot is applied. It returns when that is done or
// ctx ends.
func tuneMemory(ctx context.Context, m MemoryOptions, log *slog.Logger, progress ConfigProgress, wait time.Duration) {
	if !m.Tune {
		return
	}
	gc := footprint.TuneGC(m.GCPercent, m.MemoryLimit)
	log.Debug("memory settings", "gc", gc.String())
	if m.KeepStartupPages {
		return
	}
	release := func(when string) {
		r, err := footprint.ReleaseStartupPages()
		if err != nil {
			log.Warn("could not release startup pages", "error", err)
			return
		}
		logRelease(log, when, r)
	}
	release("start")
	t := time.NewTicker(configPoll)
	defer t.Stop()
	var appliedAt time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			applied, complete := progress()
			switch {
			case applied && complete:
				release("first configuration complete")
				return
			case applied && appliedAt.IsZero():
				appliedAt = now
			case applied && now.Sub(appliedAt) >= wait:
				release("first configuration applied, still incomplete")
				return
			}
		}
	}
}

// logRelease logs a release at debug level; where the kernel kept fault-around on, it says
// so once, at info level, with the start-up release.
func logRelease(log *slog.Logger, when string, r footprint.Released) {
	args := []any{"when", when, "resident_kib", r.ResidentKiB, "page_by_page", r.FaultAround == nil}
	if r.FaultAround != nil {
		args = append(args, "reason", r.FaultAround.Error())
		if when == "start" {
			log.Info("the kernel maps the executable's pages 64 KiB or more at a time: resident memory about 10 MiB larger",
				"reason", r.FaultAround.Error())
		}
	}
	log.Debug("released the executable's startup pages", args...)
}
