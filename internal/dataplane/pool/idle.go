package pool

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Learning each upstream host's keep-alive idle timeout, so that a request that cannot be
// sent twice never lands in the keep-alive race (see h1.go for the other defences).
//
// Many servers close idle connections silently, without a "Keep-Alive: timeout=N" header
// (Node.js behind some frameworks, gunicorn, Go's IdleTimeout, most Java servers). A
// request written as such a server closes the connection is lost: the server never read
// it, yet the proxy cannot know that, so a POST is failed with 503 UC rather than sent
// again. The pool therefore learns, per host, when the host closes idle connections and
// keeps non-replayable requests away from that moment:
//
//   - Observation: when an idle connection (no request on it) is found closed by the
//     server, the idle time T at which the server closed it is recorded. On Linux T comes
//     from the kernel (TCP_INFO: the time since the FIN arrived), so finding the close
//     late does not make T late; elsewhere, and for a reset, T is the last time the
//     connection was seen open (an underestimate, which is the safe side).
//   - Estimate: the learned timeout drops to a shorter observation at once and moves a
//     quarter of the way towards a longer one (shrinks fast, grows slowly). A request
//     answered on a connection idle for I proves the server keeps connections at least I:
//     before anything is learned this raises the reuse limit, afterwards it lets a learned
//     timeout grow.
//   - Margin: reuse stops at the timeout less the measured round trip to the host (the
//     fastest recent request-to-response-headers time, which covers the link delay both
//     ways) and a twentieth of the timeout (at least 20 ms, at most 1 s), for the server's
//     own close processing, timer slack and the kernel clock's granularity. That is the
//     reuse limit.
//   - Retirement: once a host's timeout is learned, its idle connections are closed at the
//     reuse limit. Once a minute (IdleProbeInterval) one connection per host is kept past
//     it instead, for replayable requests only, to see the server's own close again: that
//     is how a longer timeout is learned.
//   - Non-replayable requests (Replayable false: POST, PATCH, ... without an
//     Idempotency-Key) never take an idle connection past the reuse limit; before anything
//     is learned the limit comes from the bound (DefaultIdleBound, 1 s, configurable with
//     Set.SetIdleBound). They take a younger idle connection or a new one instead; each such
//     avoidance is counted, and the new connection too.
//   - A "Keep-Alive: timeout=N" header wins: a connection that carries one lives 0.8 N
//     (keepAliveLife) whatever was learned, unless the server was seen closing earlier.
//   - What was learned is forgotten when the host leaves its cluster (ForgetHosts).
//
// Replayable requests keep reusing any open connection: if they lose the race, forward
// sends them again on a new connection.

// DefaultIdleBound is the longest idle time at which a non-replayable request reuses a
// connection to a host whose idle timeout is not yet known (less the margin: about 0.95 s).
// The shortest idle timeouts common servers ship with are gunicorn's 2 s keepalive, Node.js
// and Apache's 5 s; half of the shortest leaves room for servers configured below it.
const DefaultIdleBound = time.Second

// IdleProbeInterval is how often a host with a learned idle timeout keeps one idle
// connection past its reuse limit (usable by replayable requests only) to see whether the
// server keeps connections longer now. A variable so tests can shorten it.
var IdleProbeInterval = time.Minute

// maxIdleHosts bounds the hosts a pool remembers (ORIGINAL_DST clusters meet many).
const maxIdleHosts = 4096

// rttWindow is how long an RTT sample counts towards the minimum.
const rttWindow = 30 * time.Second

// Replayable says whether req may be sent again if it fails on a reused connection after
// it was written: its method is idempotent (RFC 9110 §9.2.2: GET, HEAD, OPTIONS, TRACE, PUT,
// DELETE) or it carries an Idempotency-Key (or X-Idempotency-Key) header. A request that is
// not replayable is kept off connections that may be in the keep-alive race.
func Replayable(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	if _, ok := req.Header["Idempotency-Key"]; ok {
		return true
	}
	_, ok := req.Header["X-Idempotency-Key"]
	return ok
}

// idleState is one cluster's keep-alive knowledge: per-host learned idle timeouts and the
// counters of what it cost. It outlives its Pool when a settings change replaces the pool
// (the hosts did not change).
type idleState struct {
	bound time.Duration // the reuse bound before anything is learned; negative: none

	mu    sync.Mutex // guards hosts
	hosts map[string]*hostIdle

	retired atomic.Uint64 // idle connections closed before the host's idle timeout
	avoided atomic.Uint64 // idle connections a non-replayable request did not take
	extra   atomic.Uint64 // connections opened because of the two above
}

func newIdleState(bound time.Duration) *idleState {
	if bound == 0 {
		bound = DefaultIdleBound
	}
	return &idleState{bound: bound, hosts: map[string]*hostIdle{}}
}

// host returns addr's state, created on first use.
func (s *idleState) host(addr string) *hostIdle {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.hosts[addr]; h != nil {
		return h
	}
	if len(s.hosts) >= maxIdleHosts {
		for a, old := range s.hosts { // drop one: it falls back to the bound
			old.forgotten.Store(true)
			delete(s.hosts, a)
			break
		}
	}
	h := &hostIdle{s: s}
	s.hosts[addr] = h
	return h
}

// lookup returns addr's state, nil when there is none.
func (s *idleState) lookup(addr string) *hostIdle {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hosts[addr]
}

func (s *idleState) forget(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.hosts[addr]; h != nil {
		h.forgotten.Store(true)
		delete(s.hosts, addr)
	}
}

// hostIdle is what the pool knows about one host's idle timeout.
//
// Lock contract: the atomics are read without mu on the request path; mu serialises the
// updates of learned and guards closes, lastProbe and early.
type hostIdle struct {
	s         *idleState
	learned   atomic.Int64 // ns; 0: not learned
	alive     atomic.Int64 // ns: the longest idle after which a reused connection was answered (before learning)
	announced atomic.Int64 // ns: the last Keep-Alive: timeout the host sent; 0: none
	forgotten atomic.Bool  // the host left its cluster; connections look their state up again

	rttCur, rttPrev atomic.Int64 // ns: minimum request-to-headers time in this and the last window
	rttSince        atomic.Int64 // unix ns: start of the current window

	mu        sync.Mutex
	closes    int         // idle closes observed
	lastProbe time.Time   // when a connection was last kept past the limit
	early     []time.Time // when connections retired early would have been closed by the server
}

// rtt is the measured round trip: the fastest recent request-to-response-headers time.
func (h *hostIdle) rtt() time.Duration {
	cur, prev := h.rttCur.Load(), h.rttPrev.Load()
	if prev > 0 && (cur == 0 || prev < cur) {
		cur = prev
	}
	return time.Duration(cur)
}

func (h *hostIdle) sampleRTT(now time.Time, d time.Duration) {
	if d <= 0 {
		d = 1
	}
	if since := h.rttSince.Load(); now.UnixNano()-since > int64(rttWindow) {
		if h.rttSince.CompareAndSwap(since, now.UnixNano()) {
			h.rttPrev.Store(h.rttCur.Load())
			h.rttCur.Store(int64(d))
			return
		}
	}
	for {
		cur := h.rttCur.Load()
		if cur != 0 && cur <= int64(d) || h.rttCur.CompareAndSwap(cur, int64(d)) {
			return
		}
	}
}

// margin is how long before timeout a connection stops being reused.
func (h *hostIdle) margin(timeout time.Duration) time.Duration {
	return h.rtt() + min(max(timeout/20, 20*time.Millisecond), time.Second)
}

// limit is the idle time from which a non-replayable request does not reuse a connection
// to the host, and whether idle connections are retired there (the timeout is learned).
func (h *hostIdle) limit() (time.Duration, bool) {
	if l := time.Duration(h.learned.Load()); l > 0 {
		return max(l-h.margin(l), 0), true
	}
	if h.s.bound < 0 {
		return maxDuration, false
	}
	base := max(h.s.bound, time.Duration(h.alive.Load()))
	return max(base-h.margin(base), 0), false
}

const maxDuration = time.Duration(1<<63 - 1)

// observeClose records that the server closed a connection idle for t, and returns the
// learned timeout before and after.
func (h *hostIdle) observeClose(now time.Time, t time.Duration) (before, after time.Duration) {
	if t <= 0 {
		t = time.Millisecond
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	cur := time.Duration(h.learned.Load())
	switch {
	case cur == 0:
		after = t
		h.lastProbe = now // the first probe a full interval after learning
	case t < cur:
		after = t
	default:
		after = cur + (t-cur)/4
	}
	h.learned.Store(int64(after))
	h.alive.Store(0)
	h.closes++
	return cur, after
}

// provenAlive records that a request was answered on a connection idle for idle: the
// server keeps connections at least that long.
func (h *hostIdle) provenAlive(idle time.Duration) {
	if l := h.learned.Load(); l > 0 {
		if int64(idle) <= l {
			return
		}
		h.mu.Lock()
		if cur := h.learned.Load(); cur > 0 && int64(idle) > cur {
			h.learned.Store(cur + (int64(idle)-cur)/4)
		}
		h.mu.Unlock()
		return
	}
	for {
		cur := h.alive.Load()
		if int64(idle) <= cur || h.alive.CompareAndSwap(cur, int64(idle)) {
			return
		}
	}
}

// takeProbe says whether a connection reaching the limit now becomes the host's probe.
func (h *hostIdle) takeProbe(now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if now.Sub(h.lastProbe) < IdleProbeInterval {
		return false
	}
	h.lastProbe = now
	return true
}

// retiredEarly records a connection closed before the server would have closed it (at
// serverClose), so that a new connection opened before then counts as extra.
func (h *hostIdle) retiredEarly(now, serverClose time.Time) {
	h.s.retired.Add(1)
	if !serverClose.After(now) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.early) < 1024 {
		h.early = append(h.early, serverClose)
	}
}

// replacesRetired says whether a new connection replaces one retired early that the
// server would still have kept open; it consumes that one.
func (h *hostIdle) replacesRetired(now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	live := h.early[:0]
	for _, t := range h.early {
		if t.After(now) {
			live = append(live, t)
		}
	}
	clear(h.early[len(live):])
	h.early = live
	if len(live) == 0 {
		return false
	}
	h.early = live[1:]
	return true
}

// IdleInfo is what a pool knows about one host's keep-alive idle timeout (the /clusters
// view and `lucid why`).
type IdleInfo struct {
	// Timeout is the host's idle timeout: learned from its closes, or announced in
	// Keep-Alive headers; 0 when unknown.
	Timeout time.Duration
	// Announced says Timeout comes from a "Keep-Alive: timeout" header.
	Announced bool
	// Closes is how many idle closes were observed.
	Closes int
	// ReuseLimit is the idle time from which a non-replayable request takes another
	// connection (and, with a learned timeout, idle connections are retired); negative when
	// there is none (the bound is off and nothing is learned).
	ReuseLimit time.Duration
	// Bound is the configured bound used before anything is learned (negative: none).
	Bound time.Duration
}

// String renders the timeout for /clusters: "300ms (learned from 4 upstream closes)",
// "5s (Keep-Alive header)" or "unknown".
func (i IdleInfo) String() string {
	switch {
	case i.Timeout <= 0:
		return "unknown"
	case i.Announced:
		return i.Timeout.String() + " (Keep-Alive header)"
	case i.Closes == 1:
		return i.Timeout.String() + " (learned from 1 upstream close)"
	}
	return fmt.Sprintf("%s (learned from %d upstream closes)", i.Timeout, i.Closes)
}

func (h *hostIdle) info() IdleInfo {
	i := IdleInfo{Bound: h.s.bound}
	if i.ReuseLimit, _ = h.limit(); i.ReuseLimit == maxDuration {
		i.ReuseLimit = -1
	}
	if l := h.learned.Load(); l > 0 {
		i.Timeout = time.Duration(l)
		h.mu.Lock()
		i.Closes = h.closes
		h.mu.Unlock()
	} else if a := h.announced.Load(); a > 0 {
		i.Timeout, i.Announced = time.Duration(a), true
		i.ReuseLimit = keepAliveLife(time.Duration(a))
	}
	return i
}

// ExplainReuse is what `lucid why` says about sending req over HTTP/1.1 to the host at
// addr: "" when req can be replayed. info is the host's state from /clusters; nil when
// unknown (an older sidecar).
func ExplainReuse(req *http.Request, addr string, info *IdleInfo) string {
	if Replayable(req) {
		return ""
	}
	head := req.Method + " without an Idempotency-Key cannot be sent twice, so the sidecar sends it on a new connection or one idle less than "
	var limit string
	switch {
	case info == nil:
		limit = "the host's reuse limit (/clusters idle_reuse_limit)"
	case info.ReuseLimit < 0:
		return req.Method + " without an Idempotency-Key cannot be sent twice, but " + addr +
			"'s idle timeout is not learned yet and the reuse bound is off (--upstream-idle-bound), so a 503 UC for it may be the keep-alive race"
	case info.Timeout > 0:
		limit = fmt.Sprintf("%s (%s's idle timeout: %s)", info.ReuseLimit, addr, info)
	default:
		limit = fmt.Sprintf("%s (%s's idle timeout is not learned yet; the bound until then is --upstream-idle-bound)", info.ReuseLimit, addr)
	}
	return head + limit + "; a 503 UC for it is therefore not the keep-alive race: the upstream closed or reset a connection it had taken the request on (crash, restart, its own request timeout), or has just shortened its idle timeout (learned again at its next close)"
}
