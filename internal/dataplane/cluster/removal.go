package cluster

import (
	"sync"
	"sync/atomic"
	"time"
)

// Draining long-lived streams off hosts that left their cluster.
//
// Envoy drains the connection pools of a host removed from EDS (no new streams) but lets
// the streams already on it run until they end by themselves. A watch
// pinned to a removed (or ejected) API server therefore stays there, possibly forever.
// Lucid does the same at first and then, after a bounded grace period, ends the streams
// still bound to the host, so their clients reconnect and land on a live endpoint:
//
//	forward / tcp_proxy: h.Track(kind, end) while a response or connection streams
//	Manager.Update: a host that is gone (or no longer usable) → timer(grace)
//	timer: still gone → end(reason) for every stream tracked on it
//
// A host that comes back within the grace period keeps its streams.

// StreamKind is what a tracked stream carries, each with its own grace period.
type StreamKind int

// The kinds of streams.
const (
	HTTPStream    StreamKind = iota // an HTTP response body being streamed
	TCPConnection                   // an opaque tcp_proxy connection
)

// Default grace periods: long enough for a request in flight during a rollout to finish,
// short enough that a watch moves within a minute.
const (
	DefaultHTTPDrainGrace = 30 * time.Second
	DefaultTCPDrainGrace  = 30 * time.Second
)

// DrainOptions say how long streams may stay on a host after it left its cluster. Zero
// fields take the defaults; a negative value turns ending streams off for that kind
// (Envoy's behaviour: they run until they end by themselves).
type DrainOptions struct {
	HTTPGrace time.Duration
	TCPGrace  time.Duration
}

func (o DrainOptions) grace(k StreamKind) time.Duration {
	g := o.HTTPGrace
	def := DefaultHTTPDrainGrace
	if k == TCPConnection {
		g, def = o.TCPGrace, DefaultTCPDrainGrace
	}
	if g == 0 {
		return def
	}
	return g
}

// drainState is the Manager's part of draining (a field of Manager).
type drainState struct {
	opts atomic.Pointer[DrainOptions]
}

// SetDrainOptions sets the grace periods; safe to call at any time.
func (m *Manager) SetDrainOptions(o DrainOptions) { m.drain.opts.Store(&o) }

func (m *Manager) drainOptions() DrainOptions {
	if o := m.drain.opts.Load(); o != nil {
		return *o
	}
	return DrainOptions{}
}

// tracked holds the live streams per host, keyed by the host's *HostStats (its identity
// across updates; unique across managers).
var tracked sync.Map // *HostStats → *hostStreams

type hostStreams struct {
	mu      sync.Mutex
	dead    bool // removed from tracked; Track must start over
	streams map[*stream]struct{}
}

type stream struct {
	kind StreamKind
	once sync.Once
	end  func(reason string)
}

// Track registers a long-lived stream bound to h. end is called at most once, from
// another goroutine, when h has been gone from its cluster for the kind's grace period; it
// must make the stream finish promptly (cancel its context, close its connection). The
// returned function unregisters the stream; call it when the stream ends.
func (h *Host) Track(kind StreamKind, end func(reason string)) (stop func()) {
	s := &stream{kind: kind, end: end}
	for {
		v, _ := tracked.LoadOrStore(h.Stats, &hostStreams{streams: map[*stream]struct{}{}})
		hs := v.(*hostStreams)
		hs.mu.Lock()
		if hs.dead {
			hs.mu.Unlock()
			continue
		}
		hs.streams[s] = struct{}{}
		hs.mu.Unlock()
		return func() { untrackStream(h.Stats, hs, s) }
	}
}

func untrackStream(key *HostStats, hs *hostStreams, s *stream) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	delete(hs.streams, s)
	if len(hs.streams) == 0 && !hs.dead {
		hs.dead = true
		tracked.Delete(key)
	}
}

// TrackedStreams counts the streams tracked on h (for the admin API and tests).
func (h *Host) TrackedStreams() int {
	v, ok := tracked.Load(h.Stats)
	if !ok {
		return 0
	}
	hs := v.(*hostStreams)
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return len(hs.streams)
}

// drainRemoved schedules the end of streams on hosts that were usable in old and are not
// in next (removed from EDS, marked unhealthy or draining, or their cluster removed).
// Called by Update with m.mu held.
func (m *Manager) drainRemoved(old, next *clusterSet) {
	for name, oc := range old.byName {
		nc := next.byName[name]
		for _, h := range oc.usable {
			if _, ok := tracked.Load(h.Stats); !ok {
				continue // nothing streams on it
			}
			if nc != nil && nc.usableHost(h) {
				continue
			}
			reason := "endpoint " + h.Addr + " left cluster " + name
			if nc == nil {
				reason = "cluster " + name + " was removed"
			}
			m.DrainHost(name, h, reason)
		}
	}
}

// usableHost says whether the cluster routes to h's address (a host that left and came
// back is a new *Host with new stats, but the same endpoint).
func (c *Cluster) usableHost(h *Host) bool {
	for _, u := range c.usable {
		if u.Addr == h.Addr && !u.Ejected() {
			return true
		}
	}
	return false
}

// DrainHost ends the streams tracked on h once each kind's grace period has passed,
// unless by then cluster routes to h again (listed, usable and not ejected). Outlier
// ejection should call it for an ejected host.
func (m *Manager) DrainHost(cluster string, h *Host, reason string) {
	o := m.drainOptions()
	for _, k := range []StreamKind{HTTPStream, TCPConnection} {
		g := o.grace(k)
		if g < 0 {
			continue
		}
		msg := reason + "; streams still on it are ended after the drain grace period " + g.String() + " so clients reconnect to a live endpoint"
		time.AfterFunc(g, func() {
			if c := m.Get(cluster); c != nil && c.usableHost(h) {
				return // it came back
			}
			m.log.Info("ending streams on a removed endpoint", "cluster", cluster, "endpoint", h.Addr, "kind", k)
			endStreams(h, k, msg)
		})
	}
}

func endStreams(h *Host, k StreamKind, reason string) {
	v, ok := tracked.Load(h.Stats)
	if !ok {
		return
	}
	hs := v.(*hostStreams)
	hs.mu.Lock()
	var ends []*stream
	for s := range hs.streams {
		if s.kind == k {
			ends = append(ends, s)
		}
	}
	hs.mu.Unlock()
	for _, s := range ends {
		s.once.Do(func() { s.end(reason) })
	}
}

// OnHostsRemoved makes Update call f with the addresses of the hosts that left each cluster
// (no longer in its endpoints, or the cluster removed), after the new state is published.
// The connection pools forget what they learned about those hosts (pool.Set.ForgetHosts).
// f runs with Update's lock held: it must not call Update.
func (m *Manager) OnHostsRemoved(f func(cluster string, addrs []string)) {
	m.removed.Store(&f)
}

// hostGone notes that addr left cluster. Called by Update (and newCluster) with m.mu held.
func (m *Manager) hostGone(cluster, addr string) {
	if m.removed.Load() == nil {
		return
	}
	if m.gone == nil {
		m.gone = map[string][]string{}
	}
	m.gone[cluster] = append(m.gone[cluster], addr)
}

// notifyRemoved reports the hosts noted by hostGone. Called by Update with m.mu held.
func (m *Manager) notifyRemoved() {
	f := m.removed.Load()
	if f == nil || len(m.gone) == 0 {
		return
	}
	for name, addrs := range m.gone {
		(*f)(name, addrs)
	}
	clear(m.gone)
}
