package admin

import (
	"net/http"
	"runtime"
	"runtime/metrics"
	"strconv"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/stats"
)

// The process's own numbers, as Envoy's /memory and its server.* stats give them, read
// from the Go runtime (runtime/metrics: no stop-the-world).

// memorySample is what /memory and server.* read.
type memorySample struct {
	heapObjects, heapFree, heapReleased, heapUnused, total uint64
	goroutines, stacks                                     uint64
}

var memoryMetrics = []string{
	"/memory/classes/heap/objects:bytes",  // live and not yet swept objects: Envoy's "allocated"
	"/memory/classes/heap/free:bytes",     // free heap still mapped: "pageheap_free"
	"/memory/classes/heap/released:bytes", // heap returned to the OS: "pageheap_unmapped"
	"/memory/classes/heap/unused:bytes",   // fragmentation inside spans
	"/memory/classes/total:bytes",         // everything the runtime mapped: "total_physical_bytes"
	"/sched/goroutines:goroutines",
	"/memory/classes/heap/stacks:bytes", // goroutine stacks (they live in the heap's spans)
}

func readMemory() memorySample {
	s := make([]metrics.Sample, len(memoryMetrics))
	for i, n := range memoryMetrics {
		s[i].Name = n
	}
	metrics.Read(s)
	v := func(i int) uint64 {
		if s[i].Value.Kind() == metrics.KindUint64 {
			return s[i].Value.Uint64()
		}
		return 0
	}
	return memorySample{heapObjects: v(0), heapFree: v(1), heapReleased: v(2), heapUnused: v(3), total: v(4), goroutines: v(5), stacks: v(6)}
}

// heapSize is Envoy's heap_size: the heap the process holds from the OS.
func (m memorySample) heapSize() uint64 { return m.heapObjects + m.heapFree + m.heapUnused }

type memoryJSON struct {
	Allocated          string `json:"allocated"`
	HeapSize           string `json:"heap_size"`
	PageheapUnmapped   string `json:"pageheap_unmapped"`
	PageheapFree       string `json:"pageheap_free"`
	TotalThreadCache   string `json:"total_thread_cache"`
	TotalPhysicalBytes string `json:"total_physical_bytes"`
	Goroutines         string `json:"goroutines"` // Lucid's: the runtime's concurrency
	Stacks             string `json:"stacks"`     // Lucid's: bytes of goroutine stacks
}

// memory serves Envoy's /memory (envoy.admin.v3.Memory; numbers as strings, as Envoy's
// JSON prints uint64), plus the goroutine count and the bytes of their stacks.
func (s *server) memory(w http.ResponseWriter, _ *http.Request) {
	m := readMemory()
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	writeJSON(w, memoryJSON{
		Allocated: u(m.heapObjects), HeapSize: u(m.heapSize()), PageheapUnmapped: u(m.heapReleased),
		PageheapFree: u(m.heapFree), TotalThreadCache: "0", TotalPhysicalBytes: u(m.total), Goroutines: u(m.goroutines),
		Stacks: u(m.stacks),
	})
}

// ServerGauges are Envoy's server.* gauges: uptime, memory, state (0 LIVE, 1 DRAINING, 2
// PRE_INITIALIZING, 3 INITIALIZING), live, concurrency, total_connections (the
// downstream connections open, from connections), plus server.goroutines. For
// stats.Stats.AddGauges.
func ServerGauges(started time.Time, state func() string, connections func() uint64) stats.CounterSource {
	return func(emit func(string, uint64)) {
		m := readMemory()
		emit("server.uptime", uint64(time.Since(started).Seconds()))
		emit("server.memory_allocated", m.heapObjects)
		emit("server.memory_heap_size", m.heapSize())
		emit("server.memory_physical_size", m.total)
		emit("server.goroutines", m.goroutines)
		emit("server.concurrency", uint64(runtime.GOMAXPROCS(0)))
		st := "LIVE"
		if state != nil {
			st = state()
		}
		code := map[string]uint64{"LIVE": 0, "DRAINING": 1, "PRE_INITIALIZING": 2, "INITIALIZING": 3}[st]
		live := uint64(0)
		if st == "LIVE" {
			live = 1
		}
		emit("server.state", code)
		emit("server.live", live)
		if connections != nil {
			emit("server.total_connections", connections())
		}
	}
}
