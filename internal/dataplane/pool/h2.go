package pool

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/lucid-mesh/lucid/internal/dataplane/h2client"
)

// The limited HTTP/2 (h2c) path: Envoy's HTTP/2 connection pool for clusters whose
// DestinationRule sets limits that net/http's Transport cannot enforce the Envoy way.
// The Transport waits when max_connections is reached; Envoy queues the request as
// pending and refuses it with 503 UO beyond max_pending_requests. So when a cluster sets
//
//   - http2_protocol_options.max_concurrent_streams (connectionPool.http.maxConcurrentStreams),
//   - max_requests_per_connection (connectionPool.http.maxRequestsPerConnection),
//   - circuit breaker max_connections (connectionPool.tcp.maxConnections) or
//     max_pending_requests (connectionPool.http.http1MaxPendingRequests) below Istio's 2^32-1,
//
// the pool keeps its own connections (h2client ClientConns over connections made by the
// Transport's dialer, with the cluster's keepalive PINGs and idle timeout; or net/http
// ClientConns made by the Transport when LUCID_HTTP2_CLIENT=nethttp) and picks one per
// request:
//
//   - a connection to the endpoint with a free stream (fewer than max_concurrent_streams
//     streams of ours, and the server's SETTINGS_MAX_CONCURRENT_STREAMS not reached);
//   - else a new connection while the cluster has fewer than max_connections;
//   - else the request waits (upstream_rq_pending_active) for a stream or a connection to
//     free up, and fails at once with *OverflowError beyond max_pending_requests.
//
// A request may also join a connection still being dialled while it has a free stream.
// A connection that carried max_requests_per_connection requests takes no more and is
// closed when its last stream ends (Envoy drains it). Without such limits the same path
// runs with no connection or pending limit, as the Transport would (a new connection when
// every one is at the server's stream limit), but without the Transport's per-request
// connection lookup (getConn, its contexts and hand-offs): every HTTP/2 request of a pool
// runs here.

// h2Limited says whether a cluster's settings need the limited HTTP/2 path.
func h2Limited(st settings) bool {
	finite := func(v uint32) bool { return v > 0 && v < math.MaxInt32 }
	return st.maxStreams > 0 || st.maxReqPerConn > 0 || finite(st.maxConns) || finite(st.maxPending)
}

// h2lim is the limited HTTP/2 half of a Pool.
//
// Lock contract: mu guards conns, open, waiters, closed and every h2Conn's mutable
// fields; it is never held during I/O (dial, RoundTrip, Close).
type h2lim struct {
	p          *Pool
	t          *http.Transport
	maxConns   int
	maxPen     int
	maxStreams int    // per connection, ours (at the server's own limit, see free, requests picked together may wait inside net/http)
	maxReq     uint32 // per connection; 0: unlimited
	native     bool   // h2client connections (default); false: net/http's ClientConn

	mu      sync.Mutex
	conns   map[string][]*h2Conn // by address
	open    int                  // connections open or being dialled
	waiters map[*waiter]struct{}
	closed  bool
}

// h2ClientConn is what the pool uses of an HTTP/2 client connection: h2client's, or
// net/http's (LUCID_HTTP2_CLIENT=nethttp).
type h2ClientConn interface {
	RoundTrip(*http.Request) (*http.Response, error)
	Close() error
	Err() error     // non-nil once it takes no new streams
	Available() int // streams it can open now (the server's limit less those open)
}

// http2ClientEnv selects the HTTP/2 client: "nethttp" keeps net/http's ClientConn.
const http2ClientEnv = "LUCID_HTTP2_CLIENT"

// h2Conn is one HTTP/2 connection of the limited path.
type h2Conn struct {
	cc       h2ClientConn  // nil while being dialled
	nc       net.Conn      // the connection under cc
	local    string        // nc's local address for ConnObserver
	ready    chan struct{} // closed when the dial ended (cc or err set)
	err      error         // why the dial failed
	addr     string
	active   int    // our streams on it
	requests uint32 // requests sent on it
	draining bool   // max_requests_per_connection reached: no new streams
	gone     bool   // removed from conns and counted out of open
}

func newH2Lim(p *Pool, t *http.Transport) *h2lim {
	st := p.settings
	h := &h2lim{p: p, t: t, conns: map[string][]*h2Conn{}, waiters: map[*waiter]struct{}{}}
	h.maxConns = limit(st.maxConns, 1024)
	h.maxPen = limit(st.maxPending, 1024)
	h.maxStreams = limit(st.maxStreams, math.MaxInt32)
	h.maxReq = st.maxReqPerConn
	h.native = os.Getenv(http2ClientEnv) != "nethttp"
	if !h2Limited(st) {
		// No limits set: the connections the Transport would keep (a new one when every
		// connection is at the server's stream limit, no pending queue), without the
		// Transport's per-request connection lookup and hand-offs.
		h.maxConns, h.maxPen = math.MaxInt, math.MaxInt
	}
	return h
}

// get returns a connection to addr with one stream counted for the caller, and whether
// the connection had carried requests before. A connection being dialled takes streams
// too (Envoy attaches pending streams to a connecting connection), so a burst does not
// open one connection per request.
func (h *h2lim) get(ctx context.Context, addr string, cb Counters) (*h2Conn, bool, error) {
	pending := false
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
			return nil, false, errPoolClosed
		}
		if c := h.free(addr); c != nil {
			reused := c.requests > 0
			h.take(c)
			h.mu.Unlock()
			if err := h.await(ctx, c); err != nil {
				return nil, false, err
			}
			return c, reused, nil
		}
		if h.open >= h.maxConns {
			if c := h.idleElsewhere(addr); c != nil { // make room, as h1 does
				h.removeLocked(c)
				h.mu.Unlock()
				_ = c.cc.Close()
				continue
			}
			if len(h.waiters) >= h.maxPen {
				h.mu.Unlock()
				return nil, false, &OverflowError{Limit: "max_pending_requests", Value: h.maxPen}
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
				return nil, false, ctx.Err()
			}
		}
		h.open++
		c := &h2Conn{addr: addr, ready: make(chan struct{})}
		h.conns[addr] = append(h.conns[addr], c)
		h.take(c)
		h.mu.Unlock()
		go h.dial(ctx, c, cb) // owned by the pool; ends within the connect timeout
		if err := h.await(ctx, c); err != nil {
			return nil, false, err
		}
		return c, false, nil
	}
}

// await waits until a connection being dialled is up. On failure the stream is released.
func (h *h2lim) await(ctx context.Context, c *h2Conn) error {
	select {
	case <-c.ready: // established: the usual case, which does not make ctx's Done channel
	default:
		select {
		case <-c.ready:
		case <-ctx.Done():
			h.release(c)
			return ctx.Err()
		}
	}
	if c.err != nil {
		h.release(c)
		return c.err
	}
	return nil
}

// free finds a connection to addr that can take one more stream. Called with mu held.
func (h *h2lim) free(addr string) *h2Conn {
	for _, c := range h.conns[addr] {
		if c.draining || c.active >= h.maxStreams {
			continue
		}
		if c.cc == nil {
			return c // being dialled
		}
		if c.cc.Err() != nil || c.cc.Available() <= 0 {
			continue // dead (the state hook removes it), or at the server's own stream limit
		}
		return c
	}
	return nil
}

// take counts one stream on c. Called with mu held.
func (h *h2lim) take(c *h2Conn) {
	c.active++
	c.requests++
	if h.maxReq > 0 && c.requests >= h.maxReq {
		c.draining = true
	}
}

// idleElsewhere is an established connection without streams to another address.
// Called with mu held.
func (h *h2lim) idleElsewhere(addr string) *h2Conn {
	for a, l := range h.conns {
		if a == addr {
			continue
		}
		for _, c := range l {
			if c.active == 0 && c.cc != nil {
				return c
			}
		}
	}
	return nil
}

// dial makes c's connection; c.err says why it failed. Streams waiting on c are woken.
func (h *h2lim) dial(ctx context.Context, c *h2Conn, cb Counters) {
	// The connection outlives this request: only the connect timeout bounds the dial.
	var nc net.Conn
	dctx := withDialValues(context.WithoutCancel(ctx), cb, &nc)
	cc, err := h.newConn(dctx, c)
	h.mu.Lock()
	switch {
	case err != nil:
		var ce *ConnectError
		if !errors.As(err, &ce) {
			ce = connectError(c.addr, err)
		}
		c.err = ce
		h.removeLocked(c)
	case h.closed:
		c.err = errPoolClosed
		h.removeLocked(c)
	default:
		c.cc, c.nc, c.local = cc, nc, LocalAddress(nc)
		if h.p.retired.Load() {
			c.draining = true // the pool left the Set while dialling: close after its streams
		}
	}
	unused := c.err == nil && c.draining && c.active == 0 // its streams gave up waiting
	if unused {
		h.removeLocked(c)
	}
	close(c.ready)
	h.wake()
	h.mu.Unlock()
	if err == nil && (c.err != nil || unused) {
		_ = cc.Close()
	}
	if nh, ok := cc.(*http.ClientConn); ok && c.err == nil && !unused {
		nh.SetStateHook(func(*http.ClientConn) { h.changed(c) })
	}
}

// newConn makes the HTTP/2 connection of c: dialled with the Transport's dialer (the
// cluster's TLS, counters and the dialed-connection slot in ctx), then an h2client
// connection on it, or net/http's ClientConn.
func (h *h2lim) newConn(ctx context.Context, c *h2Conn) (h2ClientConn, error) {
	if !h.native {
		return h.t.NewClientConn(ctx, "http", c.addr)
	}
	nc, err := h.t.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, err
	}
	ka := h.p.settings.keepalive
	cc, err := h2client.NewClientConn(nc, h2client.Config{
		PingInterval: ka.h2Interval,
		PingTimeout:  ka.h2Timeout,
		IdleTimeout:  h.p.settings.idleTimeout,
		StateHook:    func(*h2client.ClientConn) { h.changed(c) },
	})
	if err != nil {
		return nil, connectError(c.addr, err)
	}
	return cc, nil
}

// changed runs when a connection's state changes: a stream or the connection ended, or
// the server raised its stream limit. Waiters look again; a dead connection leaves.
func (h *h2lim) changed(c *h2Conn) {
	h.mu.Lock()
	if c.cc != nil && c.cc.Err() != nil {
		h.removeLocked(c)
	}
	h.wake()
	h.mu.Unlock()
}

// release ends one stream of c; a drained connection closes with its last stream.
func (h *h2lim) release(c *h2Conn) {
	h.mu.Lock()
	c.active--
	closeIt := c.draining && c.active == 0 && c.cc != nil
	if closeIt {
		h.removeLocked(c)
	}
	h.wake()
	h.mu.Unlock()
	if closeIt {
		_ = c.cc.Close()
	}
}

// removeLocked takes c out of the pool's accounting once. Called with mu held.
func (h *h2lim) removeLocked(c *h2Conn) {
	if c.gone {
		return
	}
	c.gone = true
	h.open--
	l := h.conns[c.addr]
	for i, x := range l {
		if x == c {
			l = append(l[:i], l[i+1:]...)
			break
		}
	}
	if len(l) == 0 {
		delete(h.conns, c.addr)
	} else {
		h.conns[c.addr] = l
	}
}

// wake tells every pending request to look again. Called with mu held.
func (h *h2lim) wake() {
	if len(h.waiters) == 0 {
		return // the usual: every stream's end comes here twice (changed, release)
	}
	for w := range h.waiters {
		select {
		case w.ch <- struct{}{}:
		default:
		}
		delete(h.waiters, w)
	}
}

// closeIdle closes connections without streams (a retired pool's in-flight streams end on
// their own, and their connections close with them).
func (h *h2lim) closeIdle() {
	var idle []*h2Conn
	h.mu.Lock()
	for _, l := range h.conns {
		for _, c := range l {
			if c.active == 0 && c.cc != nil {
				idle = append(idle, c)
			} else {
				c.draining = true
			}
		}
	}
	for _, c := range idle {
		h.removeLocked(c)
	}
	h.wake()
	h.mu.Unlock()
	for _, c := range idle {
		_ = c.cc.Close()
	}
}

// roundTrip sends req on a connection of the limited path.
func (h *h2lim) roundTrip(req *http.Request, addr string, cb Counters, obs ConnObserver) (*http.Response, error) {
	for tries := 1; ; tries++ {
		resp, err := h.roundTripOnce(req, addr, cb, obs)
		if err == nil || tries == maxUnprocessedRetries || !unprocessed(err) ||
			(req.Body != nil && req.Body != http.NoBody) || req.Context().Err() != nil {
			return resp, err
		}
		// The server never processed the stream (GOAWAY with a lower last stream id, or a
		// connection that became unusable before the request went out): send it again on
		// another connection, as net/http's Transport does for such streams.
	}
}

// maxUnprocessedRetries bounds the sends of one request whose stream the server did not
// process (h2lim.roundTrip).
const maxUnprocessedRetries = 3

// unprocessed says whether err is net/http's report of a stream the server did not
// process. Its errors are unexported, so their text is matched.
func unprocessed(err error) bool {
	var re *ResetError
	if !errors.As(err, &re) {
		return false
	}
	if h2client.IsUnprocessed(re.Err) {
		return true
	}
	msg := re.Err.Error()
	return strings.Contains(msg, "graceful shutdown GOAWAY") || strings.Contains(msg, "client conn not usable")
}

// roundTripOnce sends req on one connection.
func (h *h2lim) roundTripOnce(req *http.Request, addr string, cb Counters, obs ConnObserver) (*http.Response, error) {
	c, reused, err := h.get(req.Context(), addr, cb)
	if err != nil {
		return nil, err
	}
	var at attempt // on the stack: the net/http path's trace has a flag of its own
	at.gotConn.Store(true)
	at.reused.Store(reused)
	if trace := httptrace.ContextClientTrace(req.Context()); trace != nil && trace.GotConn != nil {
		trace.GotConn(httptrace.GotConnInfo{Conn: c.nc, Reused: reused})
	}
	observe(obs, c.nc, c.local)
	var resp *http.Response
	if h.native {
		resp, err = c.cc.RoundTrip(req)
		if err != nil {
			at.wrote.Store(h2client.HeadersWritten(err))
		}
	} else {
		var wrote bool
		resp, wrote, err = netHTTPRoundTrip(c, req)
		at.wrote.Store(wrote)
	}
	if err != nil {
		h.release(c)
		return nil, classify(req.Context(), err, &at)
	}
	b := streamBodies.Get().(*streamBody)
	b.ReadCloser, b.h, b.c, b.resp = resp.Body, h, c, resp
	resp.Body = b
	return resp, nil
}

// netHTTPRoundTrip sends req on net/http's ClientConn c.cc and says whether the request
// headers were written (which net/http reports through a ClientTrace only).
func netHTTPRoundTrip(c *h2Conn, req *http.Request) (*http.Response, bool, error) {
	wrote := new(atomic.Bool)
	ctx := httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		WroteHeaders: func() { wrote.Store(true) },
	})
	resp, err := c.cc.RoundTrip(req.WithContext(ctx))
	return resp, wrote.Load(), err
}

// streamBody ends the stream's accounting on c, and the pool's RoundTrip (in flight),
// once, when the body is closed. Its memory serves another response's once Recycle says
// nothing reaches it.
type streamBody struct {
	io.ReadCloser
	released atomic.Bool
	h        *h2lim
	c        *h2Conn
	resp     *http.Response // the response it is the body of
}

// streamBodies holds streamBodies that nothing reaches any more.
var streamBodies = sync.Pool{New: func() any { return new(streamBody) }}

// Recycle gives the response's memory back, the HTTP/2 client's answer with the body's
// own: Recycler's contract (h1read.go).
func (b *streamBody) Recycle() {
	if r := h2client.Recycler(b.resp, b.ReadCloser); r != nil {
		r.Recycle()
	}
	b.ReadCloser, b.h, b.c, b.resp = nil, nil, nil, nil
	b.released.Store(false)
	streamBodies.Put(b)
}

// ValueSlot is the HTTP/2 client's answer's (plainResp.ValueSlot); nil when its memory
// is not the client's.
func (b *streamBody) ValueSlot() []string {
	if s, ok := h2client.Recycler(b.resp, b.ReadCloser).(ValueSlotter); ok {
		return s.ValueSlot()
	}
	return nil
}

func (b *streamBody) Close() error {
	err := b.ReadCloser.Close()
	if b.released.CompareAndSwap(false, true) {
		b.h.release(b.c)
		b.h.p.done()
	}
	return err
}
