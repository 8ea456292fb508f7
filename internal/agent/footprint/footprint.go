// Package footprint keeps the sidecar's memory small. It sits beside the data plane: the
// agent (`lucid sidecar`) calls it once at start and once when the first configuration is
// complete; nothing on the request path calls it.
//
// Where an idle sidecar's resident memory goes (bench/RESULTS.md has the table): 3/4
// are pages of the `lucid` executable itself. The one binary carries the control plane,
// the CLI and the Kubernetes packages, and every package's initialisation runs in every
// process; the kernel maps file pages around each faulting address (64 KiB "fault-around"),
// so initialisation code and tables scattered over the binary stay mapped for the life of
// the process although the sidecar never runs them again. The rest is the Go heap, which
// the garbage collector lets grow to twice the live heap by default.
//
// ReleaseStartupPages unmaps the executable's read-only pages (code, rodata, pclntab): the
// page cache keeps them, and a page still in use is mapped back by a minor fault on its
// next touch, so the resident set shrinks to what the sidecar actually runs. Where the
// kernel allows it (Linux 6.7 or later, userfaultfd not blocked), that fault maps the page
// touched alone rather than its 64 KiB neighbourhood: at load the executable then holds
// about 5 MB resident instead of 16. TuneGC sets a
// lower GC target (and, if asked, a soft memory limit) unless the operator set GOGC or
// GOMEMLIMIT.
package footprint

import (
	"fmt"
	"os"
	"runtime/debug"
)

// DefaultGCPercent is the sidecar's GC target: the heap grows to 1.2x the live heap
// before a collection instead of Go's 2x. The proxy path makes little garbage (the lines
// of a head that differ from the connection's last one, in blocks shared by many
// requests: about 40 bytes per request when a client repeats its requests), so
// collections stay rare even at saturation. Measured in bench/RESULTS.md: 25 % saved 2 MiB at load against 50 % for
// 0.3 µs more GC per request; 20 % saves about 0.5 MiB more on h2c for well under 0.1 µs.
const DefaultGCPercent = 20

// GCSettings are what TuneGC applied.
type GCSettings struct {
	GCPercent   int   // -1: left to GOGC
	MemoryLimit int64 // -1: left to GOMEMLIMIT
}

// TuneGC sets the GC target to gcPercent (0: DefaultGCPercent; negative: left alone) and,
// if memoryLimit > 0, a soft limit in bytes on the Go runtime's memory (heap, stacks,
// runtime metadata; not the executable's pages): the collector works harder as the
// runtime approaches it, and a sidecar whose live heap needs more still gets it. There is
// no limit by default: a fixed one would make the GC run hot for a sidecar with a large
// configuration, while the GC target keeps the heap proportional to what is live. The
// GOGC and GOMEMLIMIT environment variables, when set, win. It returns what it set.
func TuneGC(gcPercent int, memoryLimit int64) GCSettings {
	s := GCSettings{GCPercent: -1, MemoryLimit: -1}
	if gcPercent == 0 {
		gcPercent = DefaultGCPercent
	}
	if _, ok := os.LookupEnv("GOGC"); !ok && gcPercent > 0 {
		debug.SetGCPercent(gcPercent)
		s.GCPercent = gcPercent
	}
	if _, ok := os.LookupEnv("GOMEMLIMIT"); !ok && memoryLimit > 0 {
		debug.SetMemoryLimit(memoryLimit)
		s.MemoryLimit = memoryLimit
	}
	return s
}

// Released is what ReleaseStartupPages did.
type Released struct {
	ResidentKiB int64 // resident in the released mappings just before
	// FaultAround is nil when a page touched again is mapped back alone; otherwise why
	// the kernel still maps the cached pages of the 64 KiB around each fault with it.
	FaultAround error
}

// String is the settings for a log line.
func (s GCSettings) String() string {
	gc, lim := "GOGC", "GOMEMLIMIT"
	if s.GCPercent >= 0 {
		gc = fmt.Sprint(s.GCPercent)
	}
	if s.MemoryLimit >= 0 {
		lim = fmt.Sprintf("%dMiB", s.MemoryLimit>>20)
	}
	return fmt.Sprintf("gc_percent=%s memory_limit=%s", gc, lim)
}
