package h2server

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/lucid-mesh/lucid/internal/dataplane/h2frame"
	"github.com/lucid-mesh/lucid/internal/dataplane/hpackenc"
	"github.com/lucid-mesh/lucid/internal/dataplane/reqctx"
	"github.com/lucid-mesh/lucid/internal/dataplane/sockio"
)

// conn is one served connection. Its goroutine (serve) reads frames and dispatches them;
// handlers write theirs into wbuf. Lock contract: mu guards every field below it; the
// reader holds it while it handles a frame, a handler while it writes. Nobody holds it
// across a read or a write of the socket (flushLocked lets it go while writing), and no
// context is cancelled under it (cancels are collected in cancels).
type conn struct {
	s      *Server
	cfg    *config
	nc     net.Conn
	br     *bufio.Reader
	src    source       // under br: the connection's reads (held.go)
	sock   *sockio.Conn // the plaintext socket, read inside the poller's wait (nil: not so); set by the reader under mu
	held   heldState    // serveHeld's
	fr     *http2.Framer
	rd     h2frame.Reader // reads through fr, or in place (h2frame)
	dec    *hpack.Decoder // request header blocks (hpack.go), the reader's own
	hb     headerBlock    // the last block decoded, the reader's own
	ctx    reqctx.Ctx     // cancelled when the connection ends; the streams' contexts hang on it
	remote string
	tls    *tls.ConnectionState

	lastRead atomic.Int64 // clock ns of the last frame read
	cut      atomic.Bool  // cutLocked ran: the reader reads no more
	openedAt int64        // clock ns the connection started (the preface's deadline)

	mu        sync.Mutex
	wcond     sync.Cond // writers wait: send window, buffer room, their stream's or the connection's end
	wbuf      []byte    // frames not yet written
	spare     []byte    // the buffer being written, between writes
	wbufBig   bool      // large write buffers (a frame overflowed a small one since the connection was last idle)
	writing   bool      // a goroutine is writing (it writes what is added meanwhile too)
	flushSoon bool      // a goroutine will flush once the scheduler has run the others (flushSoonLocked)
	werr      error     // the connection failed or ended: nothing more is written
	dead      bool      // finish has run
	cancels   []cancel  // stream contexts to cancel once mu is let go

	enc   *hpackenc.Encoder // no dynamic table: the peer's SETTINGS_HEADER_TABLE_SIZE does not matter
	pairs []headerPair      // writeHead's
	lower map[string]string // response field names lowercased (a bounded cache)
	canon map[string]string // request field names canonicalized (a bounded cache)

	streams    map[uint32]*stream
	maxID      uint32 // the highest stream the client opened
	goingAway  bool   // GOAWAY sent: no new stream is served
	preface    bool   // the client's preface and first SETTINGS have been read
	sendWin    int64  // what the peer lets us send on the connection
	peerWin    int64  // the peer's SETTINGS_INITIAL_WINDOW_SIZE
	peerFrame  int    // the peer's SETTINGS_MAX_FRAME_SIZE
	recvWin    int64  // what the peer may still send on the connection
	recvUnack  int64  // bytes consumed and not yet given back with WINDOW_UPDATE
	pingSent   int64  // clock ns the keepalive PING went out (0: none outstanding)
	idleSince  int64  // clock ns the last stream ended (0: streams are open)
	closeAt    int64  // clock ns after which the connection is closed (0: not set)
	controlOut int    // control frames (answers to the peer) queued and not yet written
}

// Buffer sizes.
const (
	readBufSize = 16 << 10
	// Write buffers: frames the handlers let queue before they write (or wait for the
	// writer). A connection starts with small ones (ten 1 KiB answers and their heads fit
	// one) and takes large ones from the first frame that would overflow a small one, until
	// it goes idle: a busy connection holds two, so small answers cost it 32 KiB, not 128.
	wbufSmall  = 16 << 10
	wbufLarge  = 64 << 10
	maxControl = 10000 // control frames queued unwritten before the peer is cut off (net/http's)
	cacheMax   = 128
)

var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufSize) }}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{s: s, cfg: &s.cfg, nc: nc, streams: map[uint32]*stream{}}
	c.wcond.L = &c.mu
	c.sendWin, c.peerWin, c.peerFrame = initialWindow, initialWindow, minFrame
	c.recvWin = initialWindow
	c.enc = hpackenc.New()
	return c
}

// serve reads the connection's frames until it ends.
func (c *conn) serve() {
	c.br = readerPool.Get().(*bufio.Reader)
	c.src.nc = c.nc
	c.br.Reset(&c.src)
	defer c.finish()
	ctx := context.WithValue(context.Background(), http.LocalAddrContextKey, c.nc.LocalAddr())
	if c.s.ConnContext != nil {
		ctx = c.s.ConnContext(ctx, c.nc)
	}
	c.ctx.Init(ctx)
	if a := c.nc.RemoteAddr(); a != nil {
		c.remote = a.String()
	}
	if tc, ok := c.nc.(*tls.Conn); ok {
		st := tc.ConnectionState()
		c.tls = &st
	}
	c.fr = http2.NewFramer(nil, c.br)
	c.fr.SetReuseFrames()
	c.fr.SetMaxReadFrameSize(c.cfg.maxFrame)
	c.rd = h2frame.NewReader(c.fr, c.br, c.cfg.maxFrame)
	c.dec = hpack.NewDecoder(c.cfg.decoderTable, c.emit) // hpack.go
	c.dec.SetMaxStringLength(int(c.cfg.maxHeaderList))

	c.mu.Lock()
	c.writeServerPreface()
	err := c.flushLocked()
	c.mu.Unlock()
	if err != nil || !c.readPreface() {
		return
	}
	c.held.from, _ = c.nc.(HeldSocketer)
	if c.held.from == nil {
		sock := sockio.Open(c.nc) // nil: TLS, or another wrapper
		c.mu.Lock()
		c.sock = sock
		c.mu.Unlock()
	}
	for {
		if c.sock == nil && c.held.from != nil {
			if sock := c.held.from.HeldSocket(); sock != nil { // once its wrappers hold nothing more
				c.mu.Lock()
				c.sock = sock
				c.mu.Unlock()
			}
		}
		if c.cut.Load() {
			return
		}
		if c.sock != nil && !c.serveHeld() {
			return
		}
		// A frame whose reading may wait: read as it comes (held.go).
		if !c.readOne() {
			return
		}
	}
}

// readOne reads one frame and handles it; false when the connection ends.
func (c *conn) readOne() bool {
	var f any
	var err error
	// The usual request's HEADERS frame is read in place (no frame allocated); the
	// loop is never inside a header block here (readHeaderBlock reads the
	// CONTINUATIONs of one).
	if hd, ok := c.rd.Headers(false); ok {
		f, err = c.readHeaderBlock(headersFrame{streamID: hd.StreamID, ended: hd.EndStream, complete: true, frag: hd.Fragment})
		c.rd.Done(hd)
	} else {
		var fr http2.Frame
		fr, err = c.rd.ReadFrame()
		if hf, ok := fr.(*http2.HeadersFrame); ok && err == nil {
			f, err = c.readHeaderBlock(headersOf(hf)) // hpack.go
		} else {
			f = fr
		}
	}
	if err != nil {
		return c.readFailed(err)
	}
	c.lastRead.Store(c.s.now.Load())
	c.mu.Lock()
	err = c.process(f)
	if err != nil {
		err = c.frameFailed(err)
	}
	// Answers (SETTINGS and PING acks, resets) go out once no more frames are buffered.
	if err == nil && c.br.Buffered() == 0 && len(c.wbuf) > 0 && !c.flushSoon {
		err = c.flushLocked()
	}
	c.mu.Unlock()
	c.runCancels()
	return err == nil
}

// readPreface reads the client's 24-byte preface.
func (c *conn) readPreface() bool {
	var b [len(http2.ClientPreface)]byte
	if _, err := io.ReadFull(c.br, b[:]); err != nil {
		return false
	}
	return string(b[:]) == http2.ClientPreface
}

// readFailed handles an error of ReadFrame: a stream error resets the stream and reading
// goes on (true); anything else ends the connection, with GOAWAY when the peer broke the
// protocol.
func (c *conn) readFailed(err error) bool {
	c.mu.Lock()
	var se http2.StreamError
	var ce http2.ConnectionError
	ok := false
	switch {
	case errors.As(err, &se):
		ok = c.frameFailed(se) == nil
	case errors.As(err, &ce):
		c.goAwayLocked(http2.ErrCode(ce), true)
	case errors.Is(err, http2.ErrFrameTooLarge):
		c.goAwayLocked(http2.ErrCodeFrameSize, true)
	}
	if ok && c.br.Buffered() == 0 {
		ok = c.flushLocked() == nil
	}
	c.mu.Unlock()
	c.runCancels()
	return ok
}

// frameFailed answers a frame's error: a stream error resets the stream (nil: reading
// goes on); a connection error sends GOAWAY and is returned.
func (c *conn) frameFailed(err error) error {
	var se http2.StreamError
	if errors.As(err, &se) {
		if st := c.streams[se.StreamID]; st != nil {
			c.resetLocked(st, se.Code, errStreamReset)
		} else {
			c.writeRST(se.StreamID, se.Code)
			if se.StreamID%2 == 1 && se.StreamID > c.maxID {
				c.maxID = se.StreamID // a malformed request's stream is closed: its DATA is dropped
			}
		}
		return nil
	}
	code := http2.ErrCodeProtocol
	var ce http2.ConnectionError
	if errors.As(err, &ce) {
		code = http2.ErrCode(ce)
	}
	c.goAwayLocked(code, true)
	return err
}

// finish ends the connection: every stream's context is cancelled and its handler's
// reads and writes fail.
func (c *conn) finish() {
	_ = c.nc.Close()
	c.mu.Lock()
	c.dead = true
	if c.werr == nil {
		c.werr = net.ErrClosed
	}
	for _, st := range c.streams {
		st.endLocked(errConnClosed)
		c.cancels = append(c.cancels, cancel{st, errConnClosed})
	}
	clear(c.streams)
	c.wcond.Broadcast()
	c.mu.Unlock()
	c.runCancels()
	c.ctx.Cancel(errConnClosed)
	c.br.Reset(nil)
	readerPool.Put(c.br)
	c.s.forget(c)
}

// cutLocked ends the connection at once, with mu held. A plaintext socket is shut down
// rather than closed: a close waits for the read in progress, and the reader, when it
// reads inside the poller's wait (held.go), may be waiting for mu. Either way the reader
// then meets the end, and finish closes the connection.
func (c *conn) cutLocked() {
	c.cut.Store(true)
	if c.sock != nil {
		c.sock.Shutdown()
		return
	}
	_ = c.nc.Close()
}

// runCancels cancels the contexts of the streams that ended while mu was held.
func (c *conn) runCancels() {
	c.mu.Lock()
	cs := c.cancels
	c.cancels = nil
	c.mu.Unlock()
	for _, x := range cs {
		x.st.ctx.Cancel(x.why)
	}
}

// cancel is a stream context to cancel, and why.
type cancel struct {
	st  *stream
	why error
}

// goAwayLocked sends GOAWAY with code: NO_ERROR stops new streams and lets those open
// finish (the connection closes once none is left); another code ends the connection
// once the frame is written (closeNow).
func (c *conn) goAwayLocked(code http2.ErrCode, closeNow bool) {
	if c.goingAway && !closeNow {
		return
	}
	c.goingAway = true
	c.writeGoAway(c.maxID, code)
	if closeNow {
		for c.writing { // the GOAWAY must go out before the close
			c.wcond.Wait()
		}
		_ = c.flushLocked()
		c.werr = errConnClosed
		c.cutLocked()
		return
	}
	if len(c.streams) == 0 {
		c.closeAt = c.s.now.Load() + int64(goAwayClose)
	}
}

// shutdown is the graceful end (Server.Shutdown): GOAWAY, streams finish, then close.
func (c *conn) shutdown() {
	c.mu.Lock()
	if !c.preface {
		c.werr = errConnClosed
		c.cutLocked()
		c.mu.Unlock()
		return
	}
	c.goAwayLocked(http2.ErrCodeNo, false)
	_ = c.flushLocked()
	c.mu.Unlock()
}

// closeIfIdle sends GOAWAY to a connection without streams (keep-alives turned off).
func (c *conn) closeIfIdle() {
	c.mu.Lock()
	if len(c.streams) == 0 {
		if c.preface {
			c.goAwayLocked(http2.ErrCodeNo, false)
			_ = c.flushLocked()
		} else {
			c.werr = errConnClosed
			c.cutLocked()
		}
	}
	c.mu.Unlock()
}

// timers runs the connection's timeouts at clock now (the reaper's tick): the preface,
// the idle timeout, the keepalive PING and its answer, the close after GOAWAY.
func (c *conn) timers(now int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		return
	}
	cfg := c.cfg
	switch {
	case c.closeAt != 0 && now > c.closeAt:
		c.werr = errConnClosed
		c.cutLocked()
		return
	case !c.preface:
		if now-c.openedAt > int64(cfg.prefaceTimeout) {
			c.werr = errConnClosed
			c.cutLocked()
		}
		return
	}
	if c.idleSince != 0 && now-c.idleSince > int64(cfg.tick) && !c.writing && len(c.wbuf) == 0 && (c.spare != nil || c.wbuf != nil) {
		putWbuf(c.spare) // idle: the write buffers go back to the pool
		putWbuf(c.wbuf)
		c.wbuf, c.spare = nil, nil
		c.wbufBig = false
	}
	if cfg.idleTimeout > 0 && c.idleSince != 0 && now-c.idleSince > int64(cfg.idleTimeout) && !c.goingAway {
		c.goAwayLocked(http2.ErrCodeNo, false)
		_ = c.flushLocked()
		return
	}
	if cfg.pingAfter <= 0 {
		return
	}
	if c.pingSent != 0 {
		if c.lastRead.Load() >= c.pingSent {
			c.pingSent = 0 // something came after the PING: the peer is alive
		} else if now-c.pingSent > int64(cfg.pingTimeout) {
			c.s.logf("h2server: no answer to PING from %s within %v: closing the connection", c.remote, cfg.pingTimeout)
			c.werr = errConnClosed
			c.cutLocked()
		}
		return
	}
	if now-c.lastRead.Load() > int64(cfg.pingAfter) {
		c.pingSent = now
		c.writePing(false, pingData)
		_ = c.flushLocked()
	}
}

var pingData = [8]byte{'l', 'u', 'c', 'i', 'd', 'h', '2', 's'}

var (
	errConnClosed  = errors.New("h2server: client disconnected")
	errStreamReset = errors.New("h2server: stream reset")
)
