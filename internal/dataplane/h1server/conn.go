package h1server

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
	"github.com/lucid-mesh/lucid/internal/dataplane/reqctx"
	"github.com/lucid-mesh/lucid/internal/dataplane/sockio"
	"github.com/lucid-mesh/lucid/internal/dataplane/strslab"
)

// conn is one served connection. Its goroutine owns the read buffer between requests;
// during a request the body reader owns it (body.mu), and the response writes (wmu).
type conn struct {
	s      *Server
	rwc    net.Conn     // as accepted: what a handler hijacks
	sock   *sockio.Conn // the plaintext TCP socket under rwc, for answers written in one call; nil otherwise
	check  *http1.Conn  // rwc when it checks the requests (http1): it knows the heads' layout
	ctx    context.Context
	remote string
	spare  *requestState // the last request's, released by its handler: the next one's

	buf  []byte // read buffer; unread bytes are buf[r:w]
	r, w int
	// The boxes buf and out go back to bufPool in.
	bufBox, outBox *[]byte
	rerr           error // a read error to return once what came with it is used

	wmu    sync.Mutex // writes: the handler's, and a 100 Continue from the body reader
	out    []byte     // response bytes not yet written
	iov    [][]byte   // scratch for writev
	fields []field    // scratch for sorting header fields
	// recv are an adopted map's fields as its owner received them (ReceivedFields), and
	// recvBits which of them collectFields found still so: written first, in that order.
	recv     []http1.ReceivedField
	recvBits uint16
	// names are the field names of answers last found valid (nameCache.valid).
	names nameCache
	// recall holds the strings of the last request head's lines (parse).
	recall strslab.Recall
	// header is the connection's response header map, given to each request's response
	// in turn (unless its handler adopts another, AdoptHeader).
	header http.Header

	deadline atomic.Int64 // Unix ns after which the reaper closes the connection (0: none)
	mu       sync.Mutex   // idle, done: Shutdown's view
	idle     bool         // waiting for a request, nothing of it read
	done     bool
	hijacked bool
	watch    watchState // watch.go

	// held.go: serving requests inside the wait for the next.
	held    heldState
	holding bool                      // a request is served inside the wait: no Hijack
	stepFn  func() sockio.Next        // step
	tryRead func([]byte) (int, error) // sock.TryRead

	resp response // the answer of the request being served
}

// bufPool holds the read and write buffers of connections.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, bufSize); return &b }}

const (
	bufSize  = 8 << 10  // a connection's read buffer, and its write buffer
	outMax   = 32 << 10 // response bytes kept before they are written (else written at once, writev)
	maxDrain = 256 << 10
)

// getBuf returns a buffer and the box it goes back to bufPool in (putBuf): a new box
// would cost an allocation each time.
func getBuf() ([]byte, *[]byte) {
	box := bufPool.Get().(*[]byte)
	return (*box)[:0], box
}

func putBuf(b []byte, box *[]byte) {
	if cap(b) != bufSize {
		return
	}
	if box == nil {
		box = new([]byte)
	}
	*box = b[:0]
	bufPool.Put(box)
}

func newConn(s *Server, c net.Conn) *conn {
	cn := &conn{s: s, rwc: c}
	under := c
	if g, ok := c.(*http1.Conn); ok { // checks reads only: writes may go to the socket
		under = g.Conn
		cn.check = g
	}
	cn.sock = sockio.Open(under)
	if cn.check != nil {
		cn.check.OnHeadStart(cn.headStarted)
	}
	if cn.sock != nil {
		cn.stepFn, cn.tryRead = cn.step, cn.sock.TryRead
	}
	return cn
}

// serve runs the connection's requests one after another.
func (c *conn) serve() {
	defer c.finish()
	ctx := context.WithValue(context.Background(), http.LocalAddrContextKey, c.rwc.LocalAddr())
	if tc, ok := c.rwc.(*tls.Conn); ok && tc.ConnectionState().NegotiatedProtocol == "h2" {
		c.handoff(ctx, nil)
		return
	}
	if c.s.ConnContext != nil {
		ctx = c.s.ConnContext(ctx, c.rwc)
	}
	c.ctx = ctx
	if a := c.rwc.RemoteAddr(); a != nil {
		c.remote = a.String()
	}
	c.buf, c.bufBox = getBuf()
	c.out, c.outBox = getBuf()
	for first := true; ; first = false {
		if !first && (c.s.closing.Load() || c.s.noKeep.Load()) {
			return // a new connection gets its first request served, as with net/http
		}
		end, ok := c.readHead()
		if !ok {
			return
		}
		if first && bytes.HasPrefix(c.buf[c.r:], h2Preface) {
			c.handoff(ctx, c.buf[c.r:c.w])
			return
		}
		st, req, rb, ok := c.next(end)
		// A request the connection's goroutine can serve while it waits for the next
		// (held.go) is served so, with the requests after it that can; the first that
		// cannot comes back parsed, and is served here.
		for ok && req != nil {
			if c.holdable(req, rb, st) {
				st, req, rb, ok = c.serveHeld(st, req)
				continue
			}
			ok = c.run(st, req, rb, false)
			req = nil
		}
		if !ok {
			return
		}
	}
}

// next parses the head at buf[r:end] into a request, with the state the last request
// left (spare) or a new one. false: the head is malformed, answered, and the connection
// ends.
func (c *conn) next(end int) (*requestState, *http.Request, *body, bool) {
	// The request's context: cancelled when the client goes away (watch.go) or the
	// request ends; what forward and the pool hang on it costs no allocation (reqctx).
	// It shares one allocation with the head's values (request.go).
	st := c.spare // the previous request's, when its handler released it
	c.spare = nil
	if st == nil {
		st = new(requestState)
	}
	rctx := &st.ctx
	rctx.Init(c.ctx)
	req, rb, perr := c.parse(st, c.buf[c.r:end], st.vals[:])
	c.r = end
	if perr != "" {
		rctx.Cancel(nil)
		c.fail(http.StatusBadRequest, perr)
		return nil, nil, nil, false
	}
	return st, req, rb, true
}

// run serves a parsed request (held: inside serveHeld's wait); false when the connection
// ends after it.
func (c *conn) run(st *requestState, req *http.Request, rb *body, held bool) bool {
	rctx := &st.ctx
	c.startRequest(rctx, rb == nil, held) // watch.go
	more := c.serveRequest(req, rb, st)
	c.endRequest()
	rctx.Cancel(nil)
	if !more {
		return false
	}
	if c.resp.released && rctx.Settled() {
		st.reset()
		c.spare = st
	}
	return true
}

// requestState is a request's http.Request and what it needs beside it, in one
// allocation: its context, its URL (when the target is a plain path), the array its
// head's values are slices of (when it has at most that many fields) and its header map.
// It lives as long as the request is referenced; a handler that calls ReleaseRequest
// hands it back for the connection's next request.
type requestState struct {
	ctx  reqctx.Ctx
	url  url.URL
	vals [16]string
	h    http.Header    // the request's header map (nil: not made yet)
	req  reqctx.Request // the request, with ctx
	// fields are the names among http1.FieldOf's the head had (RequestFields).
	fields http1.FieldSet
	// recv are the head's fields in the order received, Host among them (ReceivedRequest):
	// nrecv of them, or none when the head had more than len(recv) or a name twice.
	recv  [16]http1.ReceivedField
	nrecv uint8
}

// reset makes st ready for another request: zero, but for its header map and request
// (emptied: no value of the last request stays alive). Field by field: assigning a zero
// state would copy the request (616 bytes) out and back in, and zero the rest with it.
func (st *requestState) reset() {
	clear(st.h)
	st.req.Clear()
	st.ctx = reqctx.Ctx{}
	st.url = url.URL{}
	clear(st.vals[:])
	clear(st.recv[:])
	st.fields, st.nrecv = 0, 0
}

// h2Preface is the start of an HTTP/2 client's preface, as far as it reads as a head.
var h2Preface = []byte("PRI * HTTP/2.0\r\n\r\n")

// finish closes the connection unless it was taken over, and gives its buffers back.
func (c *conn) finish() {
	c.mu.Lock()
	c.done = true
	hijacked := c.hijacked
	c.mu.Unlock()
	if !hijacked {
		_ = c.rwc.Close()
		if c.s.ConnState != nil {
			c.s.ConnState(c.rwc, http.StateClosed)
		}
	}
	putBuf(c.buf, c.bufBox)
	putBuf(c.out, c.outBox)
	c.buf, c.out, c.bufBox, c.outBox = nil, nil, nil, nil
	c.s.forget(c)
}

// handoff gives the connection to the HTTP/2 server, replaying read.
func (c *conn) handoff(ctx context.Context, read []byte) {
	c.mu.Lock()
	c.hijacked = true
	c.mu.Unlock()
	if c.s.ConnState != nil {
		c.s.ConnState(c.rwc, http.StateHijacked)
	}
	if c.s.HTTP2 == nil {
		_ = c.rwc.Close()
		return
	}
	hc := c.rwc
	if read != nil {
		hc = &Handoff{Conn: c.rwc, pending: append([]byte(nil), read...), ctx: ctx, sock: c.sock, check: c.check}
	}
	c.s.HTTP2(hc)
}

// expire is the reaper closing a connection past its deadline.
func (c *conn) expire() {
	c.deadline.Store(0)
	_ = c.rwc.Close()
}

// closeIfIdle closes the connection if it waits for a request of which nothing has come.
// A plaintext socket is shut down rather than closed: a close waits for the read in
// progress, and the reader, serving inside the poller's wait (held.go), may be waiting for
// mu to say the connection is no longer idle. The reader then meets the end and closes it.
func (c *conn) closeIfIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.idle && !c.done && !c.hijacked {
		if c.sock != nil {
			c.sock.Shutdown()
		} else {
			_ = c.rwc.Close()
		}
	}
}

func (c *conn) setIdle(v bool) {
	c.mu.Lock()
	c.idle = v
	c.mu.Unlock()
}

// readHead reads until a whole head is buffered at buf[r:]; end is the index after its
// empty line. Empty lines before a request are skipped. false: the connection ends.
func (c *conn) readHead() (end int, ok bool) {
	waiting := c.r == c.w
	if waiting {
		c.setIdle(true)
		c.deadline.Store(c.s.clock.deadline(c.s.IdleTimeout))
	} else {
		c.deadline.Store(c.s.clock.deadline(c.s.ReadHeaderTimeout))
	}
	for {
		if end := c.bufferedHead(); end >= 0 {
			c.deadline.Store(0)
			if waiting {
				c.setIdle(false)
			}
			return end, true
		}
		if c.w-c.r >= c.maxHeader() {
			c.setIdle(false)
			c.fail(http.StatusRequestHeaderFieldsTooLarge, "request head too large")
			return 0, false
		}
		if c.rerr != nil {
			return 0, false
		}
		before := c.w
		c.fill()
		if waiting && c.w > before {
			waiting = false
			c.setIdle(false)
			c.deadline.Store(c.s.clock.deadline(c.s.ReadHeaderTimeout))
		}
		if c.w == before && c.rerr != nil {
			return 0, false
		}
	}
}

// headStarted is the checker telling that a head has begun while it keeps its bytes
// (OnHeadStart): the header timeout runs from now, and the connection is no longer idle.
func (c *conn) headStarted() {
	c.deadline.Store(c.s.clock.deadline(c.s.ReadHeaderTimeout))
	c.setIdle(false)
}

// bufferedHead is the index after the empty line of a whole head buffered at buf[r:],
// empty lines before it skipped; -1 while it has not all arrived.
func (c *conn) bufferedHead() int {
	for c.w-c.r >= 2 && c.buf[c.r] == '\r' && c.buf[c.r+1] == '\n' {
		c.r += 2
	}
	if i := c.headEnd(); i >= 0 {
		return c.r + i + 4
	}
	return -1
}

// headEnd is where the empty line ending the head at buf[r:] starts, relative to r; -1
// while it has not all arrived. A head http1 checked in place is all that is buffered.
func (c *conn) headEnd() int {
	b := c.buf[c.r:c.w]
	if c.check != nil {
		if hd, _ := c.check.Placed(b); hd != nil {
			return len(b) - 4
		}
	}
	return http1.HeadEnd(b)
}

func (c *conn) maxHeader() int {
	if c.s.MaxHeaderBytes > 0 {
		return c.s.MaxHeaderBytes
	}
	return 1 << 20
}

// fill reads once into the free end of buf, making room first.
func (c *conn) fill() {
	c.makeRoom()
	n, err := c.rwc.Read(c.buf[c.w:cap(c.buf)])
	c.w += n
	c.buf = c.buf[:c.w]
	if err != nil {
		c.rerr = err
	}
}

// makeRoom makes room at the end of buf: it moves the unread bytes to the start, or into
// a larger buffer.
func (c *conn) makeRoom() {
	if c.w == cap(c.buf) {
		if c.r > 0 {
			c.w = copy(c.buf[:cap(c.buf)], c.buf[c.r:c.w])
			c.r = 0
		} else {
			nb := make([]byte, 0, 2*cap(c.buf))
			nb = append(nb, c.buf[:c.w]...)
			putBuf(c.buf, c.bufBox)
			c.buf, c.bufBox = nb, nil
		}
	}
	if c.r == c.w {
		c.r, c.w = 0, 0
	}
}

// fail answers a request the loop itself cannot read (only on a connection that http1 did
// not check: http1 answers through the handler) and ends the connection.
func (c *conn) fail(status int, why string) {
	c.out = appendStatusLine(c.out[:0], 1, status)
	c.out = append(c.out, "Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"...)
	c.out = append(c.out, c.s.clock.dateLine()...)
	body := http.StatusText(status) + ": " + why
	c.out = append(c.out, "Content-Length: "...)
	c.out = appendInt(c.out, int64(len(body)))
	c.out = append(c.out, "\r\n\r\n"...)
	c.out = append(c.out, body...)
	_, _ = c.rwc.Write(c.out)
	c.out = c.out[:0]
}

// serveRequest runs the handler for one request and finishes its answer; false: the
// connection ends (closed or taken over).
func (c *conn) serveRequest(req *http.Request, rb *body, st *requestState) bool {
	// The connection's one response and header map serve its requests in turn: a handler
	// may not use them after it returns (http.ResponseWriter), and a connection taken
	// over serves no more requests.
	w := &c.resp
	h := c.header
	if h == nil {
		h = make(http.Header)
		c.header = h
	} else {
		clear(h)
	}
	// Zeroed, then set: a composite value with these would be built aside and copied in.
	*w = response{}
	w.c, w.req, w.header, w.cl, w.body = c, req, h, -1, rb
	w.fields, w.recv = st.fields, st.recv[:st.nrecv]
	w.closeAfter = req.Close || c.s.noKeep.Load() || c.s.closing.Load()
	w.http10 = req.ProtoMinor == 0
	w.head = req.Method == http.MethodHead
	if rb != nil {
		rb.w = w
	}
	if !c.runHandler(w, req) {
		return false
	}
	if w.hijacked {
		return false
	}
	w.finish()
	if w.owner != nil { // the head is written: nothing reads the adopted map any more
		if w.released {
			w.owner.Recycle()
		}
		w.owner = nil
	}
	if rb != nil && !rb.drain() {
		w.closeAfter = true
	}
	return !w.closeAfter && w.err == nil
}

// runHandler calls the handler; false when it panicked (the connection is closed, as
// net/http does: http.ErrAbortHandler is how a handler resets a stream).
func (c *conn) runHandler(w *response, req *http.Request) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			ok = false
			if v != http.ErrAbortHandler { //nolint:errorlint // net/http compares the same way
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				c.s.logf("h1server: panic serving %s: %v\n%s", c.remote, v, buf)
			}
			if w.body != nil {
				w.body.close()
			}
		}
	}()
	c.s.Handler.ServeHTTP(w, req)
	return true
}

func (s *Server) logf(format string, args ...any) {
	if s.ErrorLog != nil {
		s.ErrorLog.Printf(format, args...)
		return
	}
	panicLog.Printf(format, args...)
}

// Handoff is a connection handed to the HTTP/2 server after its first bytes were read:
// reads return those bytes first. Context is the connection's context (the HTTP/2
// server's ConnContext should use it).
type Handoff struct {
	net.Conn
	pending []byte
	ctx     context.Context
	sock    *sockio.Conn // the plaintext socket under Conn (nil: none)
	check   *http1.Conn  // the request checker Conn reads through (nil: none)
}

// HeldSocket is the socket under the connection, for reads made on it directly (inside
// the poller's wait: h2server), once the bytes read before the hand-over are handed on
// and the checker, if any, passes the rest through as they come; nil until then, or when
// there is no such socket (TLS).
func (h *Handoff) HeldSocket() *sockio.Conn {
	if len(h.pending) > 0 || h.check != nil && !h.check.Passing() {
		return nil
	}
	return h.sock
}

// Context is the connection's context as the HTTP/1.1 loop derived it.
func (h *Handoff) Context() context.Context { return h.ctx }

func (h *Handoff) Read(p []byte) (int, error) {
	if len(h.pending) > 0 {
		n := copy(p, h.pending)
		h.pending = h.pending[n:]
		return n, nil
	}
	return h.Conn.Read(p)
}

// CloseWrite half-closes the connection underneath.
func (h *Handoff) CloseWrite() error { return closeWrite(h.Conn) }

func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("h1server: the connection cannot half-close")
}
