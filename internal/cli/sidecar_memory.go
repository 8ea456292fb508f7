package cli

import (
	"github.com/spf13/cobra"

	"github.com/lucid-mesh/lucid/internal/agent"
)

// addMemoryFlags adds `lucid sidecar`'s memory settings (internal/agent/footprint) and turns the
// process-wide tuning on: the sidecar is the only thing in its process.
func addMemoryFlags(cmd *cobra.Command, m *agent.MemoryOptions) {
	m.Tune = true
	f := cmd.Flags()
	f.IntVar(&m.GCPercent, "gc-percent", 0, "the Go GC target in percent of the live heap (default 20; negative: Go's default; $GOGC, when set, wins)")
	f.Int64Var(&m.MemoryLimit, "memory-limit", 0, "soft limit on the Go runtime's memory (heap, stacks; not the binary's pages) in bytes (default none; $GOMEMLIMIT, when set, wins)")
	f.BoolVar(&m.KeepStartupPages, "keep-startup-pages", false, "keep the executable's pages touched at startup mapped (by default they are released once configured)")
}
