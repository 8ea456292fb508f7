// Package pool holds the sidecar's upstream connections: one pool per cluster, with its own
// HTTP/1.1 connections (h1.go: used on the caller's goroutine, server closes detected before
// reuse, Keep-Alive timeouts honoured, each host's idle timeout learned so that requests
// that cannot be replayed stay out of the keep-alive race (idle.go), max_connections /
// max_pending_requests enforced) and a net/http Transport for h2c. It sits at the end of the request path:
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
	"time"

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
	// bound is the idle reuse bound for non-replayable requests before a host's idle
	// timeout is learned (SetIdleBound). Set before Update.
	bound time.Duration
	upTLS upstreamTLSRef // tls.go: SetUpstreamTLS

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

// SetIdleBound sets how long a connection may have been idle for a request that cannot be
// replayed (POST, PATCH, ... without an Idempotency-Key) to reuse it while its host's idle
// timeout is not yet learned (idle.go). 0 means DefaultIdleBound (1 s); a negative value
// turns the bound off (such requests then reuse any open connection until a timeout is
// learned). Call it before Update.
func (s *Set) SetIdleBound(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bound = d
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
		idle := newIdleState(s.bound)
		if p, ok := old[name]; ok {
			idle = p.idle // the hosts' learned idle timeouts stay
			s.log.Debug("cluster connection settings changed, new pool", "cluster", name)
		}
		next[name] = newPool(name, st, s.source, idle, s.log)
		next[name].upTLS = &s.upTLS // tls.go
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

// ForgetHosts drops what cluster's pool learned about the hosts at addrs and closes its
// idle connections to them: the hosts left the cluster (cluster.Manager.OnHostsRemoved).
// A host that comes back starts again from the bound.
func (s *Set) ForgetHosts(cluster string, addrs []string) {
	p := s.Get(cluster)
	if p == nil {
		return
	}
	for _, a := range addrs {
		p.idle.forget(a)
	}
	for _, q := range append([]*Pool{p}, p.sourcePools()...) { // origsrc.go: the clients' pools too
		if q.h1 != nil {
			q.h1.closeIdleTo(addrs)
		}
	}
}

// IdleInfo is what cluster's pool knows about the idle timeout of the host at addr; false
// when the cluster has no HTTP/1.1 pool. A host the pool has not met yet gets the bound's
// reuse limit.
func (s *Set) IdleInfo(cluster, addr string) (IdleInfo, bool) {
	p := s.Get(cluster)
	if p == nil || p.h1 == nil {
		return IdleInfo{}, false
	}
	if h := p.idle.lookup(addr); h != nil {
		return h.info(), true
	}
	return (&hostIdle{s: p.idle}).info(), true
}

// EachStat reports the pools' keep-alive counters as cluster stats (a stats.CounterSource):
//   - upstream_cx_idle_retired: idle connections closed before the host's idle timeout
//     (learned, or announced in a Keep-Alive header);
//   - upstream_cx_idle_avoided: idle connections a request that cannot be replayed did not
//     take because they had been idle too long;
//   - upstream_cx_idle_extra: connections opened because of either (the cost).
func (s *Set) EachStat(emit func(name string, v uint64)) {
	for name, p := range *s.pools.Load() {
		if p.h1 == nil {
			continue
		}
		prefix := "cluster." + name + "."
		emit(prefix+"upstream_cx_idle_avoided", p.idle.avoided.Load())
		emit(prefix+"upstream_cx_idle_extra", p.idle.extra.Load())
		emit(prefix+"upstream_cx_idle_retired", p.idle.retired.Load())
	}
}
