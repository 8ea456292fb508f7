package h2server

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"sync"

	"golang.org/x/net/http2"

	"github.com/lucid-mesh/lucid/internal/dataplane/bufpool"
	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
	"github.com/lucid-mesh/lucid/internal/dataplane/reqctx"
)

// stream is one request and its answer: the handler's goroutine owns the response fields;
// the rest is under the connection's mu. It is the handler's http.ResponseWriter
// (response.go) and, as requestBody, the request's Body.
type stream struct {
	c    *conn
	id   uint32
	ctx  reqctx.Ctx // cancelled when the stream ends (reset, connection gone, handler done)
	req  *http.Request
	url  url.URL   // req.URL, in the same allocation
	vals [8]string // the request's header values, when that many are enough

	// Under c.mu.
	rcond        sync.Cond // a body Read waits for data or the end
	rbuf         []byte    // body bytes received; unread ones are rbuf[rr:]
	rbox         *[]byte   // rbuf's box in bodyBufs (nil: not from it)
	rr           int
	rerr         error // what Read returns once rbuf is drained (nil: more may come)
	remoteDone   bool  // the client has sent END_STREAM (or the stream ended): nothing more comes
	bodyClosed   bool  // the body was closed: what comes is dropped
	gotTrailers  bool
	needContinue bool           // Expect: 100-continue, not answered yet
	fields       http1.FieldSet // which of http1.FieldOf's names the request had (RequestFields)
	got          int64          // body bytes received
	declLen      int64          // the request's Content-Length (-1: none)
	recvWin      int64          // what the client may still send on the stream
	recvUnack    int64          // bytes read and not yet given back with WINDOW_UPDATE
	sendWin      int64          // what the client lets us send on the stream
	trailer      http.Header
	ended        bool  // over for the server (END_STREAM sent, or reset): writes fail
	endErr       error // why it ended before the handler finished

	// The response; the handler's goroutine's own (read under c.mu when the head goes out).
	header      http.Header
	status      int
	wroteHeader bool // the status is decided
	sentHeader  bool // the HEADERS frame is out (in wbuf)
	declCL      int64
	wrote       int64
	out         []byte // body bytes kept to go out with the head, or in one DATA frame
	outBox      *[]byte
	trailers    []string // declared response trailers, canonical
	handlerDone bool
	endSent     bool                   // END_STREAM is out (a HEAD's head)
	handler     http.HandlerFunc       // in place of the server's (431, 400)
	released    bool                   // ReleaseRequest: the handler keeps nothing of the request
	owner       interface{ Recycle() } // what an adopted header map belongs to (AdoptHeader)

	// Kept when the stream's memory serves another stream (reset): the request's header
	// map and the request (req points to it), with ctx.
	h      http.Header
	reqMem reqctx.Request
}

// reset makes st's memory ready for another stream: zero, but for its header map and
// request (emptied: no value of the last request stays alive).
func (st *stream) reset() {
	clear(st.h)
	st.reqMem.Clear()
	*st = stream{h: st.h, reqMem: st.reqMem}
}

// bodyBufs are the streams' response buffers and first request body buffers; a response
// whose declared length is small takes a small one.
var bodyBufs = bufpool.NewSized(8 << 10)

// getBuf is a buffer for a body of declared length n (-1: unknown) and its box.
func getBuf(n int64) ([]byte, *[]byte) {
	box := bodyBufs.Get(n)
	return *box, box
}

// putBuf gives b back (box nil: not from the pool).
func putBuf(b []byte, box *[]byte) {
	if box != nil {
		*box = b
		bodyBufs.Put(box)
	}
}

// run calls the handler (st.handler, or the server's) and ends the stream after it. A
// handler that panics, or ends its goroutine (runtime.Goexit), has its stream reset.
func (st *stream) run() {
	returned := false
	defer func() {
		if v := recover(); v != nil || !returned {
			st.panicked(v)
		}
	}()
	if h := st.handler; h != nil {
		h(st, st.req)
	} else {
		st.c.s.Handler.ServeHTTP(st, st.req)
	}
	returned = true
	st.finish()
}

// finish sends what is left of the answer and its end (END_STREAM, or trailers), resets
// the stream with NO_ERROR when the client is still sending (RFC 9113 8.1), and flushes.
func (st *stream) finish() {
	c := st.c
	c.mu.Lock()
	st.handlerDone = true
	// reusable: the stream ends here, not by a reset (which lists it for runCancels), and
	// the handler released its request: once its context settles, nothing holds it.
	reusable := false
	if !st.ended && st.endResponseLocked() == nil && !st.ended {
		if !st.remoteDone {
			c.writeRST(st.id, http2.ErrCodeNo)
		}
		st.ended = true
		c.removeLocked(st)
		reusable = st.released && st.remoteDone
	}
	st.bodyDoneLocked()
	c.flushSoonLocked()
	c.mu.Unlock()
	st.release()
	if st.owner != nil && st.released { // the head and trailers are encoded: nothing reads the map
		st.owner.Recycle()
		st.owner = nil
	}
	if reusable && st.ctx.Settled() {
		st.reset()
		spareStreams.Put(st)
	}
}

// spareStreams holds the memory of finished streams that nothing reaches any more (reset),
// for the next streams of any connection.
var spareStreams = sync.Pool{New: func() any { return new(stream) }}

// panicked resets the stream of a handler that panicked (http.ErrAbortHandler: quietly).
func (st *stream) panicked(v any) {
	c := st.c
	if v != nil && v != http.ErrAbortHandler { //nolint:errorlint // net/http compares the same way
		buf := make([]byte, 64<<10)
		buf = buf[:runtime.Stack(buf, false)]
		c.s.logf("h2server: panic serving %s: %v\n%s", c.remote, v, buf)
	}
	c.mu.Lock()
	st.handlerDone = true
	if !st.ended {
		c.resetLocked(st, http2.ErrCodeInternal, errHandlerPanic)
	}
	st.bodyDoneLocked()
	_ = c.flushLocked()
	c.mu.Unlock()
	c.runCancels()
	st.release()
}

// release cancels the stream's context and gives its buffers back.
func (st *stream) release() {
	st.ctx.Cancel(nil)
	putBuf(st.out, st.outBox)
	st.out, st.outBox = nil, nil
}

// resetLocked sends RST_STREAM with code and ends the stream.
func (c *conn) resetLocked(st *stream, code http2.ErrCode, why error) {
	c.writeRST(st.id, code)
	c.closeLocked(st, why)
}

// closeLocked ends a stream before its handler has finished (a reset either way, the
// connection ending): reads and writes fail with why, its context is cancelled.
func (c *conn) closeLocked(st *stream, why error) {
	st.endLocked(why)
	c.removeLocked(st)
	c.cancels = append(c.cancels, cancel{st, why})
}

func (st *stream) endLocked(why error) {
	if st.ended {
		return
	}
	st.ended, st.endErr = true, why
	if !st.remoteDone {
		st.remoteDone = true
		st.rerr = why
	}
	st.rcond.Broadcast()
	st.c.wcond.Broadcast()
}

// removeLocked forgets an ended stream; a connection left without streams starts its
// idle time, and closes when it is going away (or keep-alives are off).
func (c *conn) removeLocked(st *stream) {
	if c.streams[st.id] != st {
		return
	}
	delete(c.streams, st.id)
	if len(c.streams) > 0 {
		return
	}
	now := c.s.now.Load()
	c.idleSince = max(now, 1)
	if !c.goingAway && c.s.noKeep.Load() {
		c.goAwayLocked(http2.ErrCodeNo, false)
	} else if c.goingAway && c.closeAt == 0 {
		c.closeAt = now + int64(goAwayClose)
	}
}

// endRemoteLocked records the client's END_STREAM: Read returns err (nil: io.EOF) once
// the body is drained.
func (st *stream) endRemoteLocked(err error) {
	st.remoteDone = true
	if st.rerr == nil {
		if err == nil {
			err = errEOF
		}
		st.rerr = err
	}
	st.rcond.Broadcast()
}

// appendBody keeps data received for the body until the handler reads it.
func (st *stream) appendBody(data []byte) {
	if st.rr == len(st.rbuf) {
		st.rr, st.rbuf = 0, st.rbuf[:0]
	}
	if st.rbuf == nil {
		st.rbuf, st.rbox = getBuf(-1)
	}
	if len(st.rbuf)+len(data) > cap(st.rbuf) && st.rr > 0 {
		st.rbuf = st.rbuf[:copy(st.rbuf, st.rbuf[st.rr:])]
		st.rr = 0
	}
	if len(st.rbuf)+len(data) > cap(st.rbuf) && st.rbox != nil {
		nb := make([]byte, len(st.rbuf), max(2*cap(st.rbuf), len(st.rbuf)+len(data)))
		copy(nb, st.rbuf)
		putBuf(st.rbuf, st.rbox)
		st.rbuf, st.rbox = nb, nil
	}
	st.rbuf = append(st.rbuf, data...)
	st.rcond.Broadcast()
}

// bodyDoneLocked closes the body once the handler is done: later reads fail, bytes not
// read go back to the connection's window.
func (st *stream) bodyDoneLocked() {
	st.closeBodyLocked(errBodyAfterHandler)
}

func (st *stream) closeBodyLocked(why error) {
	if st.bodyClosed {
		return
	}
	st.bodyClosed = true
	if n := len(st.rbuf) - st.rr; n > 0 {
		st.c.consumedLocked(nil, int64(n))
	}
	putBuf(st.rbuf, st.rbox)
	st.rbuf, st.rbox, st.rr = nil, nil, 0
	if st.rerr == nil {
		st.rerr = why
	}
	st.rcond.Broadcast()
}

// consumedLocked counts n body bytes as read (st nil: dropped, the connection's window
// only) and gives them back with WINDOW_UPDATE once a quarter of the window has gone.
func (c *conn) consumedLocked(st *stream, n int64) {
	c.recvUnack += n
	if c.recvUnack >= int64(c.cfg.connWindow)/4 {
		c.writeWindowUpdate(0, uint32(c.recvUnack))
		c.recvWin += c.recvUnack
		c.recvUnack = 0
	}
	if st == nil || st.remoteDone {
		return
	}
	st.recvUnack += n
	if st.recvUnack >= int64(c.cfg.streamWindow)/4 {
		c.writeWindowUpdate(st.id, uint32(st.recvUnack))
		st.recvWin += st.recvUnack
		st.recvUnack = 0
	}
}

// requestBody is a stream seen as its request's Body.
type requestBody stream

func (b *requestBody) Read(p []byte) (int, error) {
	st := (*stream)(b)
	c := st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if st.needContinue {
		st.needContinue = false
		if !st.ended && !st.sentHeader {
			c.writeHead(st, http.StatusContinue, nil, false, nil)
			_ = c.flushLocked()
		}
	}
	for st.rr == len(st.rbuf) && st.rerr == nil {
		st.rcond.Wait()
	}
	if st.rr < len(st.rbuf) {
		n := copy(p, st.rbuf[st.rr:])
		st.rr += n
		c.consumedLocked(st, int64(n))
		if len(c.wbuf) > 0 {
			_ = c.flushLocked()
		}
		return n, nil
	}
	return 0, st.rerr
}

func (b *requestBody) Close() error {
	st := (*stream)(b)
	st.c.mu.Lock()
	st.needContinue = false
	st.closeBodyLocked(http.ErrBodyReadAfterClose)
	st.c.mu.Unlock()
	return nil
}

var (
	errEOF              = io.EOF
	errBodyAfterHandler = errors.New("h2server: request body read after the handler returned")
	errHandlerPanic     = errors.New("h2server: handler panicked")
)

// clientResetError is a stream the client reset, with its code.
type clientResetError struct{ code http2.ErrCode }

func (e clientResetError) Error() string {
	return "h2server: client reset the stream: " + e.code.String()
}
