package cluster

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/ilist"
)

// Draining long-lived streams off hosts that left their cluster.
//
// Envoy drains the connection pools of a host removed from EDS (no new streams) but lets
// the streams already on it run until they end by themselves. A watch
// pinned to a removed (or ejected) API server therefore stays there, possibly forever.
// Lucid does the same at first and then, after a bounded grace period, ends the streams
// still bound to the host, so their clients reconnect and land on a live endpoint:
//
//	forward / tcp_proxy: h.Track(&stream, kind, end) while a response or connection streams
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

// Stream is one tracked stream's place on its host. Its owner keeps it (a field of its
// per-request or per-connection state), so tracking a stream allocates nothing. The zero
// value is ready; a Stream is tracked on one host at a time.
type Stream struct {
	kind   StreamKind
	end    StreamEnder
	links  ilist.Links[Stream]
	ending bool // end is running (or has run): Untrack waits for it
}

// Links is where the Stream is listed on its host (ilist.Elem).
func (s *Stream) Links() *ilist.Links[Stream] { return &s.links }

// StreamEnder ends a tracked stream (see Host.Track).
type StreamEnder interface{ EndStream(reason string) }

// EndFunc is a function as a StreamEnder.
type EndFunc func(reason string)

// EndStream calls f.
func (f EndFunc) EndStream(reason string) { f(reason) }

// hostStreams holds the live streams of one host (a field of its HostStats: the host's
// identity across updates).
type hostStreams struct {
	mu    sync.Mutex
	list  ilist.List[Stream, *Stream]
	ended *sync.Cond // on mu: an end finished (made when one starts)
}

// Track registers a long-lived stream bound to h, in s. end.EndStream is called at most
// once, from another goroutine, when h has been gone from its cluster for the kind's grace
// period; it must make the stream finish promptly (cancel its context, close its
// connection). Call Untrack when the stream ends: after it returns, end is not running and
// is never called.
func (h *Host) Track(s *Stream, kind StreamKind, end StreamEnder) {
	hs := &h.Stats.streams
	*s = Stream{kind: kind, end: end}
	hs.mu.Lock()
	hs.list.Push(s)
	hs.mu.Unlock()
}

// Untrack unregisters s (tracked on h), waiting for its end to finish if it has started.
func (h *Host) Untrack(s *Stream) {
	hs := &h.Stats.streams
	hs.mu.Lock()
	for s.ending {
		hs.ended.Wait()
	}
	hs.list.Remove(s) // if still listed (not ended, not untracked already)
	hs.mu.Unlock()
}

// TrackedStreams counts the streams tracked on h (for the admin API and tests).
func (h *Host) TrackedStreams() int {
	hs := &h.Stats.streams
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return hs.list.Len()
}

// drainRemoved schedules the end of streams on hosts that were usable in old and are not
// in next (removed from EDS, marked unhealthy or draining, or their cluster removed).
// Called by Update with m.mu held.
func (m *Manager) drainRemoved(old, next *clusterSet) {
	for name, oc := range old.byName {
		nc := next.byName[name]
		for _, h := range oc.usable {
			if h.TrackedStreams() == 0 {
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

// endStreams ends the streams of kind k on h. Each leaves the list before its end runs
// (outside the lock, so a slow end holds up no other stream); Untrack waits for it.
func endStreams(h *Host, k StreamKind, reason string) {
	hs := &h.Stats.streams
	hs.mu.Lock()
	defer hs.mu.Unlock()
	for {
		s := hs.list.Front()
		for s != nil && s.kind != k {
			s = hs.list.Next(s)
		}
		if s == nil {
			return
		}
		hs.list.Remove(s)
		s.ending = true
		if hs.ended == nil {
			hs.ended = sync.NewCond(&hs.mu)
		}
		hs.mu.Unlock()
		s.end.EndStream(reason)
		hs.mu.Lock()
		s.ending = false
		hs.ended.Broadcast()
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
