package pool

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
	"github.com/lucid-mesh/lucid/internal/dataplane/reqctx"
	"github.com/lucid-mesh/lucid/internal/dataplane/sockio"
	"github.com/lucid-mesh/lucid/internal/dataplane/strslab"
)

// The HTTP/1.1 upstream path: connections the pool owns, each used by one request at a
// time on the caller's goroutine. There are no per-connection goroutines: the request is
// written and the response headers read synchronously over a buffered net.Conn, and the
// response body reader puts the connection back into the pool when the body was read to
// its end and keep-alive is allowed.
//
// The keep-alive race: an upstream closes an idle connection just as a request is sent on
// it. Four defences, none configured:
//   - at checkout an idle connection is peeked without blocking (MSG_PEEK): a FIN, an RST
//     or unexpected bytes mean the server closed it, so it is discarded and another taken;
//   - "Keep-Alive: timeout=N" on a response bounds the connection's pooled life to safely
//     less than N (keepAliveLife);
//   - each host's idle timeout is learned from the closes the pool sees (idle.go): idle
//     connections are retired before it, and a request that cannot be replayed never goes
//     on a connection idle close to it (or, before anything is learned, idle longer than
//     a conservative bound);
//   - a request that fails on a reused connection before any response byte is reported as
//     a *ResetError with Reused set and ResponseStarted false, so forward can retry it once
//     on a new connection (RoundTripNew) when it is replayable.

// H1ReapInterval is how often idle HTTP/1.1 connections are checked for a server close or
// an expired idle timeout while any are idle. A variable so tests can shorten it. Between
// these checks the reaper also wakes when a connection reaches its retirement time
// (idle.go), without peeking.
var H1ReapInterval = time.Second

// minReapGap keeps retirement wake-ups from coming closer together than this.
const minReapGap = 5 * time.Millisecond

// aLongTimeAgo is a deadline in the past: setting it unblocks a pending Read or Write.
var aLongTimeAgo = time.Unix(1, 0)

// h1 is the HTTP/1.1 half of a Pool.
//
// Lock contract: mu guards idle, open, waiters, closed and the reaper fields; it is never
// held during I/O except the non-blocking peeks of the reaper. mu may be held while taking
// idleState.mu or hostIdle.mu, never the other way round.
type h1 struct {
	p      *Pool
	dial   func(ctx context.Context, network, addr string) (net.Conn, error)
	max    int // max_connections for the cluster (Envoy's circuit breaker)
	maxPen int // max_pending_requests

	mu       sync.Mutex
	idle     map[string]*idleList // by address
	lastAddr string               // the address last looked up in idle (idleTo), and its list
	last     *idleList
	nidle    int
	open     int // connections open or being dialled
	waiters  map[*waiter]struct{}
	closed   bool
	reaping  bool
	reaper   *time.Timer
	reapAt   time.Time // when the reaper is due
	lastPeek time.Time // when the reaper last peeked every idle connection
}

type waiter struct{ ch chan struct{} }

// idleList is the idle connections to one address, the most recently used last.
type idleList struct{ conns []*h1Conn }

// idleTo is addr's idle list (nil when there is none and !create). The last address
// looked up is remembered: a cluster's requests mostly go to the same few hosts, and a
// request looks its host up twice (take, put). Called with mu held.
func (h *h1) idleTo(addr string, create bool) *idleList {
	if h.last != nil && h.lastAddr == addr {
		return h.last
	}
	l := h.idle[addr]
	if l == nil {
		if !create {
			return nil
		}
		l = new(idleList)
		h.idle[addr] = l
	}
	h.lastAddr, h.last = addr, l
	return l
}

// dropIdle forgets addr's idle list. Called with mu held.
func (h *h1) dropIdle(addr string) {
	delete(h.idle, addr)
	if h.lastAddr == addr {
		h.lastAddr, h.last = "", nil
	}
}

func newH1(p *Pool, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *h1 {
	h := &h1{p: p, dial: dial, idle: map[string]*idleList{}, waiters: map[*waiter]struct{}{}}
	h.max = limit(p.settings.maxConns, 1024)
	h.maxPen = limit(p.settings.maxPending, 1024)
	return h
}

// limit is a circuit-breaker threshold as an int: 0 means Envoy's default def; values
// beyond an int's range (Istio's 2^32-1) mean no limit.
func limit(v uint32, def int) int {
	switch {
	case v == 0:
		return def
	case uint64(v) >= 1<<31-1:
		return int(^uint(0) >> 1)
	}
	return int(v)
}

// OverflowError says a circuit breaker refused the request (Envoy's UO).
type OverflowError struct {
	// Limit is the Envoy threshold: "max_pending_requests", "max_requests" or "max_retries".
	Limit string
	Value int
}

func (e *OverflowError) Error() string {
	return fmt.Sprintf("circuit breaker %s (%d) reached", e.Limit, e.Value)
}

// h1Conn is one pooled HTTP/1.1 connection. Owned by the request using it, or by the pool
// while idle.
type h1Conn struct {
	h    *h1
	addr string
	nc   net.Conn
	// local is nc's local address for ConnObserver, worked out once.
	local string
	rc    syscall.RawConn // for the liveness peek; nil when the conn has no file descriptor
	br    *bufio.Reader
	bw    *bufio.Writer

	born      time.Time
	idleAt    time.Time // when it went idle
	lastAlive time.Time // when a peek last found it open while idle
	expires   time.Time // Keep-Alive: timeout bound; zero when none
	announced time.Duration
	requests  uint32 // requests sent on it
	// recall holds the strings of the last plain answer head read on it (parsePlainHead).
	recall strslab.Recall
	host   *hostIdle // its host's learned idle timeout (idle.go)
	probe  bool      // kept past its reuse limit to see the server's own close (idle.go)

	// per request
	wdone chan error // the body writer's result; nil when the request was written inline
	plain *plainResp // the response when h1read.go read its head and a body follows
	// fieldsOnly: the caller asked for a plain answer's fields as a list (FieldsAsker).
	fieldsOnly bool
	// listed are the request's fields when it lists them in place of its header map
	// (RequestLister); nil: the map holds them.
	listed  []http1.Field
	written int64 // bytes of the current request the kernel accepted
	read    int64 // bytes of the current response read from the socket
	reused  bool
	// takenAt is when get took it from the idle list, the exchange's start (zero for a new
	// connection: the clock is read then). A moment early, which errs on the safe side:
	// the idle time it proves comes out no longer, the round trip it samples no shorter.
	takenAt time.Time
	// endedAt is when roundTrip read an answer that came whole with its head (a
	// Content-Length body all buffered, or none): the connection has been idle since
	// then, and put takes it as its idleAt: nearer the moment the server saw it go idle
	// than a reading in put, which comes after the answer went downstream. Zero
	// otherwise: put reads the clock.
	endedAt time.Time

	peekBuf [1]byte
	peekN   int
	peekErr error
	peekFn  func(fd uintptr) bool

	// The request is written from inside the wait for its answer (sendFn, the first read
	// of sock.ReadAfter) when sendFirst is set. sent: sendFn ran; sendErr: why it wrote
	// nothing or not all. peekFirst: the check that a reused connection is still open was
	// left to sendFn (checkLate).
	sock      *sockio.Conn
	sendFn    func(fd uintptr) sockio.Next
	sendFirst bool
	sent      bool
	sendErr   error
	peekFirst bool

	// The request's context, watched while the exchange runs: an end interrupts the
	// connection (a deadline in the past) so blocked I/O returns. A reqctx.Ctx is watched
	// through watch (no allocation), another context through context.AfterFunc.
	watch       reqctx.Watch
	watching    *reqctx.Ctx
	stopAfter   func() bool
	interrupted bool   // the context had ended when the exchange began
	interrupt   func() // Cancelled, for context.AfterFunc (made once)
}

// watchCtx watches ctx for the exchange about to run; unwatchCtx ends it.
func (c *h1Conn) watchCtx(ctx context.Context) {
	c.watching, c.stopAfter, c.interrupted = nil, nil, false
	if rc, ok := ctx.(*reqctx.Ctx); ok {
		if rc.Watch(&c.watch, c) {
			c.watching = rc
		} else {
			c.interrupted = true
			c.Cancelled()
		}
		return
	}
	c.stopAfter = context.AfterFunc(ctx, c.interrupt)
}

// unwatchCtx stops watching the exchange's context: false when it ended meanwhile (the
// connection may have been interrupted), as context.AfterFunc's stop reports.
func (c *h1Conn) unwatchCtx() bool {
	switch {
	case c.watching != nil:
		ok := c.watching.Unwatch(&c.watch)
		c.watching = nil
		return ok
	case c.stopAfter != nil:
		ok := c.stopAfter()
		c.stopAfter = nil
		return ok
	}
	return !c.interrupted
}

// Cancelled interrupts the exchange: its request's context ended (reqctx.Watcher).
func (c *h1Conn) Cancelled() { _ = c.nc.SetDeadline(aLongTimeAgo) }

// Read and Write count the bytes of the current exchange (bufio sits on top). The first
// read of an answer writes its request first when sendFirst says so (exchange).
func (c *h1Conn) Read(p []byte) (int, error) {
	var n int
	var err error
	if c.sendFirst {
		c.sendFirst = false
		if n, err = c.sock.ReadAfter(p, c.sendFn); n == 0 && err == nil {
			err = c.sendErr // sendFn skipped the read
		}
	} else {
		n, err = c.nc.Read(p)
	}
	c.read += int64(n)
	return n, err
}

func (c *h1Conn) Write(p []byte) (int, error) {
	n, err := c.nc.Write(p)
	c.written += int64(n)
	return n, err
}

func (h *h1) newConn(nc net.Conn, addr string, host *hostIdle) *h1Conn {
	c := &h1Conn{h: h, addr: addr, nc: nc, local: LocalAddress(nc), born: time.Now(), host: host}
	c.interrupt = c.Cancelled
	c.br = bufio.NewReaderSize(c, 16<<10)
	c.bw = bufio.NewWriterSize(c, 8<<10)
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			c.rc = rc
			c.peekFn = func(fd uintptr) bool {
				c.peekN, c.peekErr = peek(fd, c.peekBuf[:])
				return true
			}
		}
	}
	if peekWorks {
		if w, ok := socketOf(nc).(sockio.Socketed); ok {
			c.sock = w.Socket()
			c.sendFn = c.send
		}
	}
	return c
}

// socketOf is the connection under the pool's counting wrapper.
func socketOf(nc net.Conn) net.Conn {
	if cc, ok := nc.(*countedConn); ok {
		return cc.Conn
	}
	return nc
}

// send writes the buffered request from inside the wait for its answer (sock.ReadAfter).
// On a reused connection it peeks first: that is the check that the connection is still
// open (get left it here, checkLate), and it sees what arrived before the wait began, which
// wakes no one. A FIN, an RST or stray bytes fail the request with errGoneIdle before
// anything is sent. Then the answer is awaited. On a new connection the answer is read at
// once after the write: what the upstream sent early (an answer, a FIN) is found.
func (c *h1Conn) send(fd uintptr) sockio.Next {
	c.sent = true
	if c.peekFirst {
		if c.peekN, c.peekErr = peek(fd, c.peekBuf[:]); !isEAGAIN(c.peekErr) {
			c.sendErr = errGoneIdle
			return sockio.Skip
		}
	}
	if c.sendErr = c.bw.Flush(); c.sendErr != nil {
		return sockio.Skip
	}
	if c.peekFirst {
		return sockio.WaitRead
	}
	return sockio.ReadNow
}

// idleVerdict is what a check of an idle connection found.
type idleVerdict int

const (
	idleOpen    idleVerdict = iota // it can carry a request
	idleExpired                    // a bound on its life passed (Keep-Alive header, cluster idle timeout, max duration)
	idleClosed                     // the server closed it (FIN or RST)
	idleBroken                     // unexpected bytes or a socket error
)

// check says whether an idle connection can carry a request: no bound on its life has
// passed and nothing arrived on it (no FIN, no RST, no stray bytes). Peeking is skipped
// when peek is false.
func (c *h1Conn) check(now time.Time, peekNow bool) idleVerdict {
	st := &c.h.p.settings
	switch {
	case !c.expires.IsZero() && !now.Before(c.expires):
		return idleExpired
	case st.idleTimeout > 0 && now.Sub(c.idleAt) >= st.idleTimeout:
		return idleExpired
	case st.maxConnDuration > 0 && now.Sub(c.born) >= st.maxConnDuration:
		return idleExpired
	case c.br.Buffered() > 0:
		return idleBroken
	case c.rc == nil || !peekNow:
		return idleOpen
	}
	if err := c.rc.Read(c.peekFn); err != nil {
		return idleBroken
	}
	v := c.peeked()
	if v == idleOpen {
		c.lastAlive = now
	}
	return v
}

// isEAGAIN reports whether err, as peek returns it (the errno itself), says the socket
// has nothing to read: a type assertion, cheaper per request than errors.Is's type check
// or an interface comparison.
func isEAGAIN(err error) bool {
	e, ok := err.(syscall.Errno) //nolint:errorlint // peek returns the errno, never wrapped
	return ok && e == syscall.EAGAIN
}

// peeked is what the last peek (peekN, peekErr) found.
func (c *h1Conn) peeked() idleVerdict {
	switch {
	case isEAGAIN(c.peekErr):
		return idleOpen
	case c.peekErr == nil && c.peekN == 0, errors.Is(c.peekErr, syscall.ECONNRESET):
		return idleClosed
	}
	return idleBroken
}

// errGoneIdle: send found a reused connection closed (or broken) before writing.
var errGoneIdle = errors.New("idle connection closed before the request was written")

// alive says whether an idle connection can carry a request (check with a peek).
func (c *h1Conn) alive(now time.Time) bool { return c.check(now, true) == idleOpen }

// closedAfter is the idle time at which the server closed c, and whether it is known:
// from the kernel when it can tell how long ago the FIN arrived (closeAge), else the last
// time c was seen open (an underestimate).
func (c *h1Conn) closedAfter(now time.Time) (time.Duration, bool) {
	lo, hi := c.lastAlive.Sub(c.idleAt), now.Sub(c.idleAt)
	if c.rc != nil {
		var age time.Duration
		var ok bool
		_ = c.rc.Control(func(fd uintptr) { age, ok = closeAge(fd) })
		if ok {
			return min(max(hi-age, lo), hi), true
		}
	}
	return lo, lo > 0
}

// idleLimit is the idle time from which c is no longer taken by a non-replayable request,
// and whether c is retired there. A Keep-Alive header wins over the bound used before
// anything is learned; a learned timeout applies when it is the shorter.
func (c *h1Conn) idleLimit() (time.Duration, bool) {
	limit, retire := c.host.limit()
	if !retire && !c.expires.IsZero() {
		return maxDuration, false // check retires it at the header's bound
	}
	return limit, retire
}

// serverClose is when the server would close c (for counting connections retired early).
func (c *h1Conn) serverClose() time.Time {
	if c.announced > 0 {
		return c.idleAt.Add(c.announced)
	}
	if l := c.host.learned.Load(); l > 0 {
		return c.idleAt.Add(time.Duration(l))
	}
	return time.Time{}
}

// takeIdle pops the idle connection to addr a request should use: the most recently used
// one. On the way, connections past their learned reuse limit are popped into retire (the
// caller closes them), unless one is kept as the host's probe. A request that cannot be
// replayed (guard) takes no connection past the limit: avoided is then true, and when more
// than one idle connection is past it, the oldest is retired so they do not pile up.
// Called with mu held.
func (h *h1) takeIdle(addr string, now time.Time, guard bool) (c *h1Conn, retire []*h1Conn, avoided bool) {
	il := h.idleTo(addr, false)
	for {
		if il == nil || len(il.conns) == 0 {
			return nil, retire, false
		}
		l := il.conns
		c := l[len(l)-1]
		limit, learned := c.idleLimit()
		if now.Sub(c.idleAt) < limit {
			return h.popIdle(il), retire, false
		}
		if learned && !c.probe && !c.host.takeProbe(now) {
			retire = append(retire, h.popIdle(il))
			continue
		}
		c.probe = c.probe || learned
		if !guard {
			return h.popIdle(il), retire, false
		}
		if len(l) > 1 {
			if lim, _ := l[len(l)-2].idleLimit(); now.Sub(l[len(l)-2].idleAt) >= lim {
				retire = append(retire, h.popOldest(il))
			}
		}
		return nil, retire, true
	}
}

// observeClose learns from idle connection c, found closed by the server at now. A host's
// first learned timeout, and a shrink by more than a quarter, are logged.
func (h *h1) observeClose(c *h1Conn, now time.Time) {
	t, ok := c.closedAfter(now)
	if !ok {
		return
	}
	before, after := c.host.observeClose(now, t)
	if before == 0 || after < before-before/4 {
		h.p.log.Info("learned the upstream's idle timeout from its closes", "addr", c.addr,
			"idle_timeout", after, "before", before)
	}
}

// retire closes connections retired before their host's idle timeout.
func (h *h1) retire(now time.Time, cs []*h1Conn) {
	for _, c := range cs {
		c.host.retiredEarly(now, c.serverClose())
		h.discard(c)
	}
}

// get returns a connection to addr: an idle one that is still alive unless fresh is set,
// else a new one. At max_connections the request waits (pending) for a connection to come
// back or close, and fails with *OverflowError beyond max_pending_requests.
//
// checkLate leaves the check that an idle connection is still open to send, which
// peeks from inside the wait for the answer, before writing (a bodiless request, which
// roundTrip can send again on another connection when the peek finds it closed).
//
// began, when not zero, is the caller's clock reading of a moment ago (Clock): the first
// look at the idle list takes it as now instead of reading the clock again. Being early
// errs as takenAt does: the idle times it finds come out no longer.
func (h *h1) get(ctx context.Context, addr string, cb Counters, fresh, guard, checkLate bool, began time.Time) (*h1Conn, error) {
	pending, avoided := false, false
	defer func() {
		if pending {
			if pc, ok := cb.(PendingCounters); ok {
				pc.PendingEnded()
			}
		}
	}()
	for {
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			return nil, errPoolClosed
		}
		if !fresh {
			now := began
			if now.IsZero() {
				now = time.Now()
			}
			began = time.Time{} // a look after a wait or a discard reads the clock
			c, retire, avoid := h.takeIdle(addr, now, guard)
			avoided = avoided || avoid
			if c != nil || len(retire) > 0 {
				h.mu.Unlock()
				h.retire(now, retire)
				if c == nil {
					continue
				}
				late := checkLate && c.sendFn != nil
				switch c.check(now, !late) {
				case idleOpen:
					c.reused, c.peekFirst, c.takenAt = true, late, now
					return c, nil
				case idleClosed:
					h.observeClose(c, now)
				case idleExpired:
					if !c.expires.IsZero() && !now.Before(c.expires) {
						c.host.retiredEarly(now, c.serverClose())
					}
				}
				h.discard(c)
				continue
			}
		}
		if h.open >= h.max {
			// Make room by closing an idle connection to another address (or, for a fresh
			// connection, to this one).
			if c := h.oldestIdle(); c != nil {
				h.mu.Unlock()
				h.discard(c)
				continue
			}
			if len(h.waiters) >= h.maxPen {
				h.mu.Unlock()
				return nil, &OverflowError{Limit: "max_pending_requests", Value: h.maxPen}
			}
			w := &waiter{ch: make(chan struct{}, 1)}
			h.waiters[w] = struct{}{}
			h.mu.Unlock()
			if !pending {
				pending = true
				if pc, ok := cb.(PendingCounters); ok {
					pc.PendingStarted()
				}
			}
			select {
			case <-w.ch:
				continue
			case <-ctx.Done():
				h.mu.Lock()
				delete(h.waiters, w)
				h.mu.Unlock()
				return nil, ctx.Err()
			}
		}
		h.open++
		h.mu.Unlock()
		nc, err := h.dial(withDialValues(ctx, cb, nil), "tcp", addr)
		if err != nil {
			h.closed1()
			return nil, err
		}
		host := h.p.idle.host(addr)
		switch {
		case fresh:
		case avoided:
			h.p.idle.avoided.Add(1)
			h.p.idle.extra.Add(1)
		case host.replacesRetired(time.Now()):
			h.p.idle.extra.Add(1)
		}
		return h.newConn(nc, addr, host), nil
	}
}

var errPoolClosed = errors.New("connection pool closed")

// popIdle takes the most recently used connection of idle list il. Called with mu held.
func (h *h1) popIdle(il *idleList) *h1Conn {
	l := il.conns
	if len(l) == 0 {
		return nil
	}
	c := l[len(l)-1]
	l[len(l)-1] = nil
	il.conns = l[:len(l)-1]
	h.nidle--
	return c
}

// popOldest takes the connection of idle list il idle longest. Called with mu held.
func (h *h1) popOldest(il *idleList) *h1Conn {
	l := il.conns
	c := l[0]
	copy(l, l[1:])
	l[len(l)-1] = nil
	il.conns = l[:len(l)-1]
	h.nidle--
	return c
}

// oldestIdle takes the idle connection that has been idle longest. Called with mu held.
func (h *h1) oldestIdle() *h1Conn {
	var best *idleList
	var at time.Time
	for _, il := range h.idle {
		if l := il.conns; len(l) > 0 && (best == nil || l[0].idleAt.Before(at)) {
			best, at = il, l[0].idleAt
		}
	}
	if best == nil {
		return nil
	}
	return h.popOldest(best)
}

// discard closes a connection that left the idle list.
func (h *h1) discard(c *h1Conn) {
	_ = c.nc.Close()
	h.closed1()
}

// closed1 accounts for one connection closed (or a dial that failed) and wakes waiters.
func (h *h1) closed1() {
	h.mu.Lock()
	h.open--
	h.wake()
	h.mu.Unlock()
}

// wake tells every pending request to look again. Called with mu held.
func (h *h1) wake() {
	if len(h.waiters) == 0 {
		return // the usual; a walk costs a call even over an empty map
	}
	for w := range h.waiters {
		select {
		case w.ch <- struct{}{}:
		default:
		}
		delete(h.waiters, w)
	}
}

// put returns a connection whose exchange ended cleanly to the idle list.
func (h *h1) put(c *h1Conn) {
	now := c.endedAt // the answer's end was read with its head: no clock reading
	if now.IsZero() {
		now = time.Now()
	}
	c.endedAt = time.Time{}
	c.idleAt, c.lastAlive, c.probe = now, now, false
	if c.host.forgotten.Load() { // its host left and came back: what is learned now
		c.host = h.p.idle.host(c.addr)
	}
	h.mu.Lock()
	if h.closed || h.p.retired.Load() {
		h.mu.Unlock()
		h.discard(c)
		return
	}
	il := h.idleTo(c.addr, true)
	il.conns = append(il.conns, c)
	h.nidle++
	h.wake()
	h.schedule(now, c.deadline(now))
	h.mu.Unlock()
}

// deadline is when the reaper must look at idle connection c again: its retirement at the
// learned reuse limit, the end of its Keep-Alive life, or the next regular check.
func (c *h1Conn) deadline(now time.Time) time.Time {
	at := now.Add(H1ReapInterval)
	if limit, retire := c.idleLimit(); retire && !c.probe {
		at = minTime(at, c.idleAt.Add(limit))
	}
	if !c.expires.IsZero() {
		at = minTime(at, c.expires)
	}
	return at
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// schedule makes the reaper run at at (or sooner if it is already due sooner). Called
// with mu held.
func (h *h1) schedule(now, at time.Time) {
	at = maxTime(at, now.Add(minReapGap))
	if h.reaping && !at.Before(h.reapAt) {
		return
	}
	h.reaping, h.reapAt = true, at
	if h.reaper == nil {
		h.reaper = time.AfterFunc(at.Sub(now), h.reap)
	} else {
		h.reaper.Reset(at.Sub(now))
	}
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// reap closes idle connections the server closed (learning when it did), whose life ended,
// or that reached their host's learned reuse limit, and runs again while any remain idle.
// It peeks at every connection once per H1ReapInterval; the wake-ups for retirements in
// between only compare times.
func (h *h1) reap() {
	now := time.Now()
	var dead, closed, retired []*h1Conn
	h.mu.Lock()
	peekNow := now.Sub(h.lastPeek) >= H1ReapInterval-minReapGap
	if peekNow {
		h.lastPeek = now
	}
	next := now.Add(H1ReapInterval)
	if !peekNow {
		next = h.lastPeek.Add(H1ReapInterval)
	}
	for a, il := range h.idle {
		l := il.conns
		kept := l[:0]
		for _, c := range l {
			switch c.check(now, peekNow) {
			case idleOpen:
				if limit, learned := c.idleLimit(); learned && !c.probe && now.Sub(c.idleAt) >= limit {
					if c.probe = c.host.takeProbe(now); !c.probe {
						retired = append(retired, c)
						continue
					}
				}
				kept = append(kept, c)
				next = minTime(next, c.deadline(now))
			case idleClosed:
				closed = append(closed, c)
			case idleExpired:
				if !c.expires.IsZero() && !now.Before(c.expires) {
					retired = append(retired, c)
				} else {
					dead = append(dead, c)
				}
			default:
				dead = append(dead, c)
			}
		}
		clear(l[len(kept):])
		il.conns = kept
		if len(kept) == 0 {
			h.dropIdle(a)
		}
	}
	h.nidle -= len(dead) + len(closed) + len(retired)
	h.reaping = false
	if h.nidle > 0 && !h.closed {
		h.schedule(now, next)
	}
	h.mu.Unlock()
	for _, c := range closed {
		h.observeClose(c, now)
		h.discard(c)
	}
	h.retire(now, retired)
	for _, c := range dead {
		h.discard(c)
	}
}

// closeIdle closes every idle connection; close also stops the pool for good.
func (h *h1) closeIdle(stop bool) {
	h.mu.Lock()
	var all []*h1Conn
	for _, il := range h.idle {
		all = append(all, il.conns...)
	}
	clear(h.idle)
	h.lastAddr, h.last = "", nil
	h.nidle = 0
	if stop {
		h.closed = true
		h.wake()
	}
	if h.reaper != nil {
		h.reaper.Stop()
	}
	h.reaping = false
	h.mu.Unlock()
	for _, c := range all {
		h.discard(c)
	}
}

// closeIdleTo closes the idle connections to addrs.
func (h *h1) closeIdleTo(addrs []string) {
	var all []*h1Conn
	h.mu.Lock()
	for _, a := range addrs {
		if il := h.idle[a]; il != nil {
			all = append(all, il.conns...)
			h.nidle -= len(il.conns)
			h.dropIdle(a)
		}
	}
	h.mu.Unlock()
	for _, c := range all {
		h.discard(c)
	}
}

// PendingCounters is implemented by Counters that also count requests waiting for a
// connection (upstream_rq_pending_total, upstream_rq_pending_active).
type PendingCounters interface {
	PendingStarted()
	PendingEnded()
}

// roundTrip runs one request on an HTTP/1.1 connection. See Pool.RoundTrip.
func (h *h1) roundTrip(req *http.Request, addr string, cb Counters, obs ConnObserver, fresh bool) (*http.Response, error) {
	ctx := req.Context()
	checkLate := req.Body == nil || req.Body == http.NoBody // sent again as it is (errGoneIdle)
	clock, _ := obs.(Clock)
	var began time.Time
	if clock != nil {
		began = clock.Began()
	}
again:
	c, err := h.get(ctx, addr, cb, fresh, !Replayable(req), checkLate, began)
	began = time.Time{} // a second look (errGoneIdle) reads the clock
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctxError(ctx)
		}
		return nil, err
	}
	if tr := httptrace.ContextClientTrace(ctx); tr != nil && tr.GotConn != nil {
		tr.GotConn(httptrace.GotConnInfo{Conn: c.nc, Reused: c.reused, WasIdle: c.reused})
	}
	observe(obs, c.nc, c.local)
	c.fieldsOnly = fieldsOnly(obs)
	c.listed = requestFields(obs)
	c.requests++
	c.written, c.read = 0, 0
	c.watchCtx(ctx)
	start := c.takenAt // get's clock, a moment ago, for an idle connection: one read less
	if start.IsZero() {
		start = time.Now()
	}
	c.takenAt, c.endedAt = time.Time{}, time.Time{}
	resp, err := c.exchange(req)
	if err != nil {
		c.unwatchCtx()
		if errors.Is(err, errGoneIdle) && ctx.Err() == nil { // as get does with one found closed
			if c.peeked() == idleClosed {
				h.observeClose(c, time.Now())
			}
			h.discard(c)
			goto again
		}
		h.discard(c)
		return nil, c.classify(ctx, err)
	}
	now := time.Now()
	if clock != nil {
		clock.Answered(now)
	}
	c.host.sampleRTT(now, now.Sub(start))
	if c.reused {
		c.host.provenAlive(start.Sub(c.idleAt)) // idle.go: the server kept it that long
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// The connection now belongs to the upgraded stream.
		c.unwatchCtx()
		resp.Body = &upgraded{c: c}
		return resp, nil
	}
	keep := c.keepAlive(req, resp)
	if pr := c.plain; pr != nil { // h1read.go: the body is the next ContentLength bytes
		c.plain = nil
		if int64(c.br.Buffered()) >= resp.ContentLength {
			c.endedAt = now // all of the body came with the head
		}
		pr.body = h1Body{c: c, remain: resp.ContentLength, keep: keep, pr: pr}
		resp.Body = &pr.body
		return resp, nil
	}
	if resp.Body == http.NoBody || resp.Body == nil {
		resp.Body = http.NoBody
		c.endedAt = now
		c.finish(keep)
		return resp, nil
	}
	resp.Body = &h1Body{c: c, body: resp.Body, keep: keep}
	return resp, nil
}

// exchange writes the request and reads the response headers (skipping 1xx responses).
// Small bodies are written first; others by a goroutine while the response is read
// (c.wdone reports its end).
func (c *h1Conn) exchange(req *http.Request) (*http.Response, error) {
	c.wdone = nil
	listed := c.listed // the connection keeps nothing of the request's
	c.listed = nil
	hasBody := req.Body != nil && req.Body != http.NoBody
	if !hasBody || (req.ContentLength > 0 && req.ContentLength <= syncBodyMax) {
		if err := writeRequest(c.bw, req, listed, false); err != nil {
			return nil, &writeError{err: err}
		}
		if c.sendFn == nil || c.br.Buffered() > 0 {
			if err := c.bw.Flush(); err != nil {
				return nil, &writeError{err: err}
			}
			return c.readResponse(req)
		}
		// The answer's first read writes the request (Read, send): one wait for both.
		c.sendFirst, c.sent, c.sendErr = true, false, nil
		resp, err := c.readResponse(req)
		c.sendFirst, c.peekFirst = false, false
		switch {
		case err == nil:
			return resp, nil
		case c.sendErr != nil: // errGoneIdle, or the write failed
			return nil, &writeError{err: c.sendErr}
		case !c.sent: // the wait could not begin (the connection was interrupted)
			return nil, &writeError{err: err}
		}
		return nil, err
	}
	done := make(chan error, 1)
	c.wdone = done
	go func() {
		err := writeRequest(c.bw, req, listed, true)
		if err == nil {
			err = c.bw.Flush()
		}
		done <- err
	}()
	resp, err := c.readResponse(req)
	if err != nil {
		_ = c.nc.SetDeadline(aLongTimeAgo) // unblock the writer
		if werr := <-done; werr != nil && c.read == 0 {
			return nil, &writeError{err: werr}
		}
		return nil, err
	}
	return resp, nil
}

// writeDone says whether the request was written completely, without waiting.
func (c *h1Conn) writeDone() bool {
	if c.wdone == nil {
		return true
	}
	select {
	case err := <-c.wdone:
		c.wdone = nil
		return err == nil
	default:
	}
	// The upstream answered; the writer is usually just finishing. Give it a moment, not
	// more: it may be blocked on a slow client's body.
	t := time.NewTimer(writeGrace)
	defer t.Stop()
	select {
	case err := <-c.wdone:
		c.wdone = nil
		return err == nil
	case <-t.C:
		return false
	}
}

// writeGrace is how long a finished response waits for its request's writer before the
// connection is given up instead of reused.
const writeGrace = 20 * time.Millisecond

// readResponse reads the response head (h1read.go, else net/http); a plain one with a
// body is left in c.plain (nil when resp.Body is net/http's or empty).
func (c *h1Conn) readResponse(req *http.Request) (*http.Response, error) {
	c.plain = nil
	for i := 0; ; i++ {
		pr, err := c.plainResponse(req)
		if err != nil {
			return nil, err
		}
		if pr != nil {
			if pr.resp.ContentLength > 0 {
				c.plain = pr
			}
			return &pr.resp, nil
		}
		resp, err := http.ReadResponse(c.br, req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			if i >= 8 {
				return nil, errors.New("malformed HTTP response: too many 1xx responses")
			}
			continue
		}
		return resp, nil
	}
}

// writeError marks a failure to send the request (as opposed to a failure reading the answer).
type writeError struct{ err error }

func (e *writeError) Error() string { return "write request: " + e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// keepAlive says whether the connection may carry another request after this response,
// and applies the response's Keep-Alive timeout to the connection's pooled life.
func (c *h1Conn) keepAlive(req *http.Request, resp *http.Response) bool {
	st := &c.h.p.settings
	if resp.Close || req.Close || st.maxReqPerConn == 1 ||
		(st.maxReqPerConn > 0 && c.requests >= st.maxReqPerConn) {
		return false
	}
	if ka := c.keepAliveValue(resp); ka != "" {
		timeout, maxReq, ok := parseKeepAlive(ka)
		if maxReq == 0 {
			return false
		}
		if ok {
			life := keepAliveLife(timeout)
			if life <= 0 {
				return false
			}
			c.expires, c.announced = time.Now().Add(life), timeout
			c.host.announced.Store(int64(timeout))
		}
	}
	return true
}

// keepAliveValue is resp's Keep-Alive field, looked up only when the answer has one: a
// plain answer's hop-by-hop keys say (HopFields).
func (c *h1Conn) keepAliveValue(resp *http.Response) string {
	if pr := c.plain; pr != nil && &pr.resp == resp && !slices.Contains(pr.hop, "Keep-Alive") {
		return ""
	}
	return http1.Value(resp.Header, "Keep-Alive")
}

// parseKeepAlive reads "timeout=N, max=M" (RFC 2068 §19.7.1.1): the timeout N, M or -1
// when absent, and whether a timeout was given.
func parseKeepAlive(v string) (timeout time.Duration, maxReq int, ok bool) {
	maxReq = -1
	for part := range strings.SplitSeq(v, ",") {
		k, val, _ := strings.Cut(strings.TrimSpace(part), "=")
		val = strings.Trim(strings.TrimSpace(val), `"`)
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "timeout":
			n, err := strconv.ParseFloat(val, 64)
			if err != nil || n < 0 || n > 1e6 {
				continue
			}
			timeout, ok = time.Duration(n*float64(time.Second)), true
		case "max":
			if n, err := strconv.Atoi(val); err == nil && n >= 0 {
				maxReq = n
			}
		}
	}
	return timeout, maxReq, ok
}

// keepAliveLife is how long a connection whose server announced "Keep-Alive: timeout=N"
// may stay pooled: N less a safety margin (a fifth of N, at most 2 s: 0.8 s of timeout=1,
// 4 s of timeout=5, 58 s of timeout=60), so the proxy always gives up a connection before
// the server does.
func keepAliveLife(timeout time.Duration) time.Duration {
	return timeout - min(timeout/5, 2*time.Second)
}

// finish ends an exchange: the connection goes back to the pool when keep is set and
// nothing interrupted it, else it is closed.
func (c *h1Conn) finish(keep bool) {
	if !c.unwatchCtx() { // the context ended: a deadline in the past may be set
		keep = false
	}
	if !c.writeDone() { // the upstream answered before reading the whole request
		keep = false
	}
	if keep && c.br.Buffered() == 0 {
		c.h.put(c)
		return
	}
	c.h.discard(c)
}

// classify turns a failed exchange into the pool's error types.
func (c *h1Conn) classify(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctxError(ctx)
	}
	re := &ResetError{
		Reason:          ReasonConnectionTermination,
		Reused:          c.reused,
		BeforeHeaders:   c.written == 0,
		ResponseStarted: c.read > 0,
		Err:             err,
	}
	var we *writeError
	if !errors.As(err, &we) {
		re.Reason = resetReason(err)
	}
	return re
}

func ctxError(ctx context.Context) error {
	//nolint:errorlint // identity on purpose: is the cause a custom one, or just ctx.Err() itself?
	if cause := reqctx.Cause(ctx); cause != nil && cause != ctx.Err() {
		return fmt.Errorf("upstream request: %w", cause)
	}
	return fmt.Errorf("upstream request: %w", ctx.Err())
}

// h1Body is a response body on a pooled connection: net/http's body reader, or (body
// nil) the next remain bytes of the connection.
type h1Body struct {
	c      *h1Conn
	body   io.ReadCloser
	remain int64
	keep   bool
	// state: bodyOpen until the exchange is finished, by the end of the body (bodyEnded)
	// or a Close before it (bodyCut). Close may come from another goroutine than Read's (a
	// stream ended because its host left the cluster): whichever finishes first gives the
	// connection back, once.
	state atomic.Int32

	p    *Pool     // set by Pool.roundTrip: Close ends the RoundTrip's in-flight accounting
	once sync.Once // p.done

	pr *plainResp // the plain response this body is part of (h1read.go); nil: net/http's
}

// h1Body states.
const (
	bodyOpen int32 = iota
	bodyEnded
	bodyCut
)

// errBodyClosed is what a Read of a body closed before its end returns (net/http says
// "http: read on closed response body"): what was not read is lost, which the reader
// must not take for the end of the body.
var errBodyClosed = errors.New("upstream response body closed before its end")

func (b *h1Body) Read(p []byte) (int, error) {
	switch b.state.Load() {
	case bodyEnded:
		return 0, io.EOF
	case bodyCut:
		return 0, errBodyClosed
	}
	var n int
	var err error
	if b.body != nil {
		n, err = b.body.Read(p)
	} else {
		n, err = b.readFixed(p)
	}
	if err != nil {
		b.end(err)
	}
	return n, err
}

// end finishes the exchange once the body has ended with err (io.EOF: all of it read),
// unless a Close finished it first.
func (b *h1Body) end(err error) {
	if !b.state.CompareAndSwap(bodyOpen, bodyEnded) {
		return
	}
	eof := err == io.EOF || errors.Is(err, io.EOF) //nolint:errorlint // the usual, readFixed's own, without errors.Is's type check
	b.c.finish(b.keep && eof)
	if !eof && b.c.h.p.log.Enabled(context.Background(), slog.LevelDebug) {
		b.c.h.p.log.Debug("upstream response body failed", "addr", b.c.addr, "err", err)
	}
}

// Peekable says whether PeekBody reads this body: one of a Content-Length that the pool
// reads itself and that fits the connection's read buffer. A larger one is read with Read
// into a larger buffer, which bufio fills from the socket directly: fewer, larger writes.
func (b *h1Body) Peekable() bool { return b.body == nil && b.remain <= int64(b.c.br.Size()) }

// PeekBody returns the body's next bytes where they lie in the connection's read buffer,
// no more than most bytes, reading when none are buffered: a proxy passes them on without
// copying them out first. They stay as they are until SkipBody says how many of them were
// used; io.EOF comes with the body's last bytes, and errors are Read's. Until SkipBody,
// the connection stays the body's: it goes back to the pool only once the last bytes are
// skipped. For a Peekable body only.
func (b *h1Body) PeekBody(most int) ([]byte, error) {
	switch b.state.Load() {
	case bodyEnded:
		return nil, io.EOF
	case bodyCut:
		return nil, errBodyClosed
	}
	if b.remain <= 0 {
		b.end(io.EOF)
		return nil, io.EOF
	}
	if b.c.br.Buffered() == 0 {
		if _, err := b.c.br.Peek(1); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			b.end(err)
			return nil, err
		}
	}
	p, _ := b.c.br.Peek(int(min(int64(most), b.remain, int64(b.c.br.Buffered()))))
	if int64(len(p)) == b.remain {
		return p, io.EOF
	}
	return p, nil
}

// SkipBody consumes the first n bytes PeekBody returned; the body ends when they were its
// last.
func (b *h1Body) SkipBody(n int) {
	if b.state.Load() != bodyOpen {
		return
	}
	_, _ = b.c.br.Discard(n)
	if b.remain -= int64(n); b.remain == 0 {
		b.end(io.EOF)
	}
}

// readFixed reads a Content-Length body as net/http does: io.EOF with its last bytes,
// io.ErrUnexpectedEOF when the connection ends before them.
func (b *h1Body) readFixed(p []byte) (int, error) {
	if b.remain <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.remain {
		p = p[:b.remain]
	}
	n, err := b.c.br.Read(p)
	b.remain -= int64(n)
	switch {
	case b.remain == 0:
		return n, io.EOF
	case errors.Is(err, io.EOF):
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

// Close before the end of the body closes the connection (the rest is not read).
func (b *h1Body) Close() error {
	if b.state.CompareAndSwap(bodyOpen, bodyCut) {
		b.c.finish(false)
	}
	if b.p != nil {
		b.once.Do(b.p.done)
	}
	return nil
}

// upgraded is the body of a 101 Switching Protocols response: the connection itself, as
// net/http's Transport returns it (an io.ReadWriteCloser).
type upgraded struct {
	c    *h1Conn
	once sync.Once
}

func (u *upgraded) Read(p []byte) (int, error)  { return u.c.br.Read(p) }
func (u *upgraded) Write(p []byte) (int, error) { return u.c.nc.Write(p) }
func (u *upgraded) Close() error {
	u.once.Do(func() { u.c.h.discard(u.c) })
	return nil
}
