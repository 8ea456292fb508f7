// Package pool holds the sidecar's upstream connections: one pool per cluster, with its own
// HTTP/1.1 connections (h1.go: used on the caller's goroutine, server closes detected before
// reuse, Keep-Alive timeouts honoured, max_connections / max_pending_requests enforced) and a
// net/http Transport for h2c. It sits at the end of the request path:
//
//	listener → route → forward (retry loop) → cluster (pick endpoint) → pool (connection) → app
//
// forward picks an endpoint and calls Pool.RoundTrip with its address; the pool reuses an
// idle connection to that address or dials a new one with the cluster's connect timeout, and
// classifies what went wrong (ConnectError, ResetError) so forward can choose Envoy's response
// flag and decide whether a retry is allowed.
package pool

import (
	"log/slog"
	"maps"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// Set holds one upstream connection pool per cluster.
//
// Get is lock-free (an atomic map swap); Update and Close serialise on mu.
type Set struct {
	log   *slog.Logger
	pools atomic.Pointer[map[string]*Pool]
	// source is the workload's address: connections to loopback upstreams are made from
	// it, so the next sidecar sees which workload called (local mode). Set before Update.
	source netip.Addr

	mu      sync.Mutex // guards retired and closed
	retired map[*Pool]struct{}
	closed  bool
}

// NewSet returns an empty Set. log is the "pool" logger.
func NewSet(log *slog.Logger) *Set {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Set{log: log, retired: map[*Pool]struct{}{}}
	empty := map[string]*Pool{}
	s.pools.Store(&empty)
	return s
}

// SetSourceAddress makes new connections to loopback upstreams originate from ip (the
// workload's own address in local mode), as a pod's connections come from its pod IP.
// Connections to other addresses keep the system's choice. Call it before Update.
func (s *Set) SetSourceAddress(ip netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.source = ip
}

// Update creates pools for new clusters; a cluster whose connection settings (protocol,
// connect timeout, idle timeout, max requests per connection, circuit-breaker max
// connections) are unchanged keeps its pool and connections; removed clusters' pools (and
// pools whose settings changed) close idle connections and let in-flight requests finish.
// Update never breaks an in-flight request.
func (s *Set) Update(clusters map[string]*resource.Cluster) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	old := *s.pools.Load()
	next := make(map[string]*Pool, len(clusters))
	for name, c := range clusters {
		st := settingsOf(c)
		if p, ok := old[name]; ok && p.settings == st {
			next[name] = p
			continue
		}
		next[name] = newPool(name, st, s.source, s.log)
		if _, ok := old[name]; ok {
			s.log.Debug("cluster connection settings changed, new pool", "cluster", name)
		}
	}
	s.pools.Store(&next)
	// Pools retired earlier that have drained are closed once more (a request that raced
	// with the retirement may have left an idle connection) and forgotten.
	for p := range s.retired {
		if p.inflight.Load() == 0 {
			p.closeIdle()
			delete(s.retired, p)
		}
	}
	for name, p := range old {
		if next[name] != p {
			p.retire()
			s.retired[p] = struct{}{}
		}
	}
}

// Get returns the pool of cluster, or nil when Update has not been told about it.
func (s *Set) Get(cluster string) *Pool {
	return (*s.pools.Load())[cluster]
}

// Close closes every idle connection of every pool and retires all pools; in-flight
// requests finish, and their connections close when they do.
func (s *Set) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	all := maps.Clone(*s.pools.Load())
	empty := map[string]*Pool{}
	s.pools.Store(&empty)
	for _, p := range all {
		p.retire()
	}
	for p := range s.retired {
		p.retire()
	}
	s.retired = map[*Pool]struct{}{}
}
