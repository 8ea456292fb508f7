// Package h2client is Lucid's HTTP/2 client connection (RFC 9113), the upstream half of
// every HTTP/2 request the sidecar forwards: the pool (internal/dataplane/pool) dials a
// connection (h2c with prior knowledge, or TLS that negotiated HTTP/2), wraps it in a
// ClientConn and sends requests on it with RoundTrip, which keeps net/http's semantics.
//
// Cost model, the reason it exists instead of net/http's ClientConn: one reader goroutine
// per connection; the caller's goroutine queues a request's HEADERS, and its DATA and
// END_STREAM when the body is empty or small and already known, and writes them after
// letting the scheduler run once, so that the frames other requests queued meanwhile go
// out in the same write (flushSoon; on a loopback or a busy connection each write(2)
// costs about what a request's whole processing does); a goroutine per request only for
// bodies that stream (gRPC, uploads, tunnels).
//
// Lock contract: wmu serialises writes to the connection (frames, HPACK state, stream ids);
// mu guards the connection and stream state. wmu may be taken before mu, never after;
// neither is held while calling the state hook or a request body.
package h2client

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"math"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/h2frame"
	"github.com/lucid-mesh/lucid/internal/dataplane/hpackenc"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

const (
	// streamWindow is the receive window of each stream (SETTINGS_INITIAL_WINDOW_SIZE) and
	// connWindow the connection's: as net/http's client.
	streamWindow = 4 << 20
	connWindow   = 1 << 30
	// maxHeaderList is the response header list size accepted (SETTINGS_MAX_HEADER_LIST_SIZE).
	maxHeaderList = 10 << 20
	// initialMaxStreams is assumed until the server's first SETTINGS; defaultMaxStreams when
	// its SETTINGS set no limit.
	initialMaxStreams = 100
	defaultMaxStreams = 1000
	// bufSize is the connection's read and write buffer.
	bufSize = 32 << 10
	// maxReadFrame is the largest frame the Framer reads (x/net's default: the client
	// advertises no SETTINGS_MAX_FRAME_SIZE of its own).
	maxReadFrame = 1<<24 - 1
)

// Config tunes a ClientConn; the zero value sends no PINGs and never closes an idle
// connection.
type Config struct {
	// PingInterval: a PING is sent after this long without a frame from the server, and
	// the connection is closed (every stream failing with "client connection lost") when
	// nothing arrives within PingTimeout. 0: no PINGs.
	PingInterval time.Duration
	PingTimeout  time.Duration
	// IdleTimeout closes the connection after this long without a stream. 0: never.
	IdleTimeout time.Duration
	// StateHook runs when the connection's capacity or state changes: a stream ended, the
	// server changed its stream limit, GOAWAY arrived, or the connection closed. It runs
	// on the connection's goroutines without its locks; it must not block.
	StateHook func(*ClientConn)
}

// ClientConn is one HTTP/2 connection to a server. It is safe for concurrent use.
type ClientConn struct {
	nc  net.Conn
	tls *tls.ConnectionState // nil for h2c
	cfg Config
	fr  *http2.Framer  // reads: the reader goroutine, through rd; writes: under wmu
	rd  h2frame.Reader // the reader goroutine's: answers' HEADERS in place, the rest through fr
	br  *bufio.Reader
	// The reader goroutine's: response header blocks (headers.go), and those seen again,
	// emitted without decoding (blockcache.go).
	hdec   *hpack.Decoder
	blocks blockCache
	hb     headerBlock

	wmu      sync.Mutex
	flushing bool // a writer will flush bw shortly (flushSoon): frames added meanwhile go with it
	bw       *bufio.Writer
	henc     *hpackenc.Encoder // no dynamic table: the peer's SETTINGS_HEADER_TABLE_SIZE does not matter
	nextID   uint32

	mu             sync.Mutex
	cond           sync.Cond // capacity, send window, settings: signalled under mu
	streams        map[uint32]*stream
	reserved       int // RoundTrips holding a slot whose HEADERS are not out yet
	maxStreams     int
	peerWindow     int32  // server's SETTINGS_INITIAL_WINDOW_SIZE
	peerMaxFrame   uint32 // server's SETTINGS_MAX_FRAME_SIZE
	connSend       int64  // connection send window
	connUnacked    int    // received connection bytes not yet given back
	gotSettings    bool
	extConnect     bool // server's SETTINGS_ENABLE_CONNECT_PROTOCOL
	goAway         *GoAwayError
	draining       bool // GOAWAY received or Shutdown: no new streams
	closed         bool
	err            error // why the connection closed
	idleSince      time.Time
	pingOut        bool
	pingData       [8]byte
	readsAtPing    uint64
	pingTimer      *time.Timer
	idleTimer      *time.Timer
	readerDone     chan struct{}
	frames         atomic.Uint64 // frames read, for the PING health check
	lastReadNano   atomic.Int64
	shutdownWaiter chan struct{} // closed when the last stream ends after Shutdown

	names map[string]string // request field names as sent (fieldName); under wmu
}

// NewClientConn starts HTTP/2 on nc: it writes the client preface and SETTINGS and starts
// the connection's reader. nc is owned by the ClientConn from then on (also on error).
func NewClientConn(nc net.Conn, cfg Config) (*ClientConn, error) {
	cc := &ClientConn{
		nc:           nc,
		cfg:          cfg,
		streams:      make(map[uint32]*stream),
		maxStreams:   initialMaxStreams,
		peerWindow:   65535,
		peerMaxFrame: 16384,
		connSend:     65535,
		nextID:       1,
		readerDone:   make(chan struct{}),
		idleSince:    time.Now(),
	}
	cc.cond.L = &cc.mu
	if tc, ok := nc.(interface{ ConnectionState() tls.ConnectionState }); ok {
		st := tc.ConnectionState()
		cc.tls = &st
	}
	var src io.Reader = nc
	if cfg.PingInterval > 0 {
		src = &readClock{r: nc, last: &cc.lastReadNano}
	}
	cc.br = bufio.NewReaderSize(src, bufSize)
	cc.bw = bufio.NewWriterSize(nc, bufSize)
	cc.fr = http2.NewFramer(cc.bw, cc.br)
	cc.fr.SetReuseFrames()
	cc.rd = h2frame.NewReader(cc.fr, cc.br, maxReadFrame)
	// The decoder accepts the default table (4096) although the SETTINGS below ask the
	// server for none: a server that indexes anyway costs CPU, not the request.
	cc.hdec = hpack.NewDecoder(4096, cc.emit)
	cc.hdec.SetMaxStringLength(maxHeaderList)
	cc.henc = hpackenc.New()

	_, err := cc.bw.WriteString(http2.ClientPreface)
	if err == nil {
		err = cc.fr.WriteSettings(
			http2.Setting{ID: http2.SettingEnablePush, Val: 0},
			// No HPACK dynamic table for the answers: a server that indexes its response
			// fields (nginx does) makes the decoder insert and evict entries per answer,
			// about a twentieth of the proxy's CPU per h2c request.
			http2.Setting{ID: http2.SettingHeaderTableSize, Val: 0},
			http2.Setting{ID: http2.SettingInitialWindowSize, Val: streamWindow},
			http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: maxHeaderList},
		)
	}
	if err == nil {
		err = cc.fr.WriteWindowUpdate(0, connWindow-65535)
	}
	if err == nil {
		err = cc.bw.Flush()
	}
	if err != nil {
		_ = nc.Close()
		return nil, err
	}
	cc.lastReadNano.Store(time.Now().UnixNano())
	if cfg.PingInterval > 0 {
		cc.pingTimer = time.AfterFunc(cfg.PingInterval, cc.pingCheck)
	}
	if cfg.IdleTimeout > 0 {
		cc.idleTimer = time.AfterFunc(cfg.IdleTimeout, cc.idleCheck)
	}
	go cc.readLoop()
	return cc, nil
}

// Conn is the connection under cc.
func (cc *ClientConn) Conn() net.Conn { return cc.nc }

// Available is the number of streams a RoundTrip could open now without waiting: the
// server's SETTINGS_MAX_CONCURRENT_STREAMS less the streams open; 0 once the connection
// takes no new streams.
func (cc *ClientConn) Available() int {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.closed || cc.draining || cc.nextID > math.MaxInt32 {
		return 0
	}
	return max(0, cc.maxStreams-len(cc.streams)-cc.reserved)
}

// Err is non-nil once the connection takes no new streams: it closed (the reason), or the
// server sent GOAWAY, or Shutdown began.
func (cc *ClientConn) Err() error {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	switch {
	case cc.closed:
		return cc.err
	case cc.goAway != nil:
		return cc.goAway
	case cc.draining:
		return ErrClosed
	case cc.nextID > math.MaxInt32:
		return errIDsExhausted
	}
	return nil
}

// Close closes the connection at once; open streams fail with ErrClosed.
func (cc *ClientConn) Close() error {
	cc.closeWith(ErrClosed)
	return nil
}

// Shutdown stops new streams, tells the server with GOAWAY, and closes the connection when
// its streams have ended, or at once when ctx ends first.
func (cc *ClientConn) Shutdown(ctx context.Context) error {
	cc.mu.Lock()
	cc.draining = true
	done := cc.closed || len(cc.streams) == 0
	var wait chan struct{}
	if !done {
		if cc.shutdownWaiter == nil {
			cc.shutdownWaiter = make(chan struct{})
		}
		wait = cc.shutdownWaiter
	}
	cc.cond.Broadcast()
	cc.mu.Unlock()
	cc.wmu.Lock()
	if cc.fr.WriteGoAway(0, http2.ErrCodeNo, nil) == nil {
		_ = cc.bw.Flush()
	}
	cc.wmu.Unlock()
	cc.hook()
	if done {
		return cc.Close()
	}
	select {
	case <-wait:
		cc.flushPending() // the last stream's final frames may wait for a flush still to come
		return cc.Close()
	case <-ctx.Done():
		_ = cc.Close()
		return ctx.Err()
	}
}

// closeWith closes the connection with err as the reason streams fail with. It waits for
// the reader to end unless called from it.
func (cc *ClientConn) closeWith(err error) {
	cc.closeLocked(err, true)
}

func (cc *ClientConn) closeLocked(err error, wait bool) {
	cc.mu.Lock()
	if cc.closed {
		cc.mu.Unlock()
		if wait {
			<-cc.readerDone
		}
		return
	}
	cc.closed = true
	cc.err = err
	var cut []*stream
	for _, st := range cc.streams {
		cut = append(cut, st)
	}
	for _, st := range cut {
		serr := err
		if cc.goAway != nil && !errors.Is(err, ErrClosed) && !errors.Is(err, errConnLost) {
			serr = cc.goAway
		}
		st.failLocked(serr)
		cc.removeLocked(st)
	}
	if cc.pingTimer != nil {
		cc.pingTimer.Stop()
	}
	if cc.idleTimer != nil {
		cc.idleTimer.Stop()
	}
	if cc.shutdownWaiter != nil {
		close(cc.shutdownWaiter)
		cc.shutdownWaiter = nil
	}
	cc.cond.Broadcast()
	cc.mu.Unlock()
	_ = cc.nc.Close()
	for _, st := range cut {
		st.abortBody()
	}
	cc.hook()
	if wait {
		<-cc.readerDone
	}
}

// hook calls the state hook, if any. Called without locks.
func (cc *ClientConn) hook() {
	if cc.cfg.StateHook != nil {
		cc.cfg.StateHook(cc)
	}
}

// removeLocked takes st out of the open streams (once). Called with mu held.
func (cc *ClientConn) removeLocked(st *stream) {
	if st.removed || st.id == 0 {
		return
	}
	st.removed = true
	delete(cc.streams, st.id)
	cc.cond.Broadcast()
	if len(cc.streams) == 0 {
		if cc.idleTimer != nil {
			cc.idleSince = time.Now()
		}
		if cc.shutdownWaiter != nil {
			close(cc.shutdownWaiter)
			cc.shutdownWaiter = nil
		}
	}
}

// endedLocked says whether a draining connection just lost its last stream and should
// close. Called with mu held.
func (cc *ClientConn) endedLocked() bool {
	return cc.goAway != nil && !cc.closed && len(cc.streams) == 0 && cc.reserved == 0
}

// pingCheck runs every PingInterval: a PING after PingInterval without a frame, and the
// connection closed when the PING sent last time found nothing arriving since.
func (cc *ClientConn) pingCheck() {
	cc.mu.Lock()
	if cc.closed {
		cc.mu.Unlock()
		return
	}
	if cc.pingOut {
		if cc.frames.Load() == cc.readsAtPing {
			cc.mu.Unlock()
			cc.closeLocked(errConnLost, false)
			return
		}
		cc.pingOut = false
	}
	idle := time.Duration(time.Now().UnixNano() - cc.lastReadNano.Load())
	if idle < cc.cfg.PingInterval {
		cc.pingTimer.Reset(cc.cfg.PingInterval - idle)
		cc.mu.Unlock()
		return
	}
	cc.pingOut = true
	cc.readsAtPing = cc.frames.Load()
	cc.pingData[0]++
	data := cc.pingData
	timeout := cc.cfg.PingTimeout
	if timeout <= 0 {
		timeout = cc.cfg.PingInterval
	}
	cc.pingTimer.Reset(timeout)
	cc.mu.Unlock()
	cc.wmu.Lock()
	if cc.fr.WritePing(false, data) == nil {
		_ = cc.bw.Flush() // a failed write: the next check finds no answer
	}
	cc.wmu.Unlock()
}

// idleCheck closes the connection once it has had no stream for IdleTimeout.
func (cc *ClientConn) idleCheck() {
	cc.mu.Lock()
	if cc.closed {
		cc.mu.Unlock()
		return
	}
	next := cc.cfg.IdleTimeout
	if len(cc.streams) == 0 && cc.reserved == 0 {
		idle := time.Since(cc.idleSince)
		if idle >= cc.cfg.IdleTimeout {
			cc.draining = true
			cc.mu.Unlock()
			cc.closeLocked(ErrClosed, false)
			return
		}
		next -= idle
	}
	cc.idleTimer.Reset(next)
	cc.mu.Unlock()
}

// writeFrames runs f under wmu and flushes (flushSoon); a write error closes the
// connection.
func (cc *ClientConn) writeFrames(f func(fr *http2.Framer) error) error {
	cc.wmu.Lock()
	err := f(cc.fr)
	if err == nil {
		err = cc.flushSoon()
	}
	cc.wmu.Unlock()
	if err != nil {
		cc.closeLocked(err, false)
	}
	return err
}

// flushSoon writes the frames in bw, called with wmu held (it lets go of it meanwhile).
// When another writer is about to flush, it returns at once: that writer's write carries
// these frames too (and a failure of it closes the connection, failing their streams).
// Otherwise it yields to the scheduler once before writing, so that the requests other
// goroutines are sending on this connection join the same write(2); when nothing else is
// runnable the yield returns at once.
func (cc *ClientConn) flushSoon() error {
	if cc.flushing {
		return nil
	}
	cc.flushing = true
	cc.wmu.Unlock()
	runtime.Gosched()
	cc.wmu.Lock()
	cc.flushing = false
	return cc.bw.Flush()
}

// resetStream sends RST_STREAM for id.
func (cc *ClientConn) resetStream(id uint32, code http2.ErrCode) {
	_ = cc.writeFrames(func(fr *http2.Framer) error { return fr.WriteRSTStream(id, code) })
}

// giveBack returns n received bytes to the connection window (and, with st, the
// stream's), sending WINDOW_UPDATE once enough has accumulated.
func (cc *ClientConn) giveBack(st *stream, n int) {
	if n <= 0 {
		return
	}
	var connInc, streamInc uint32
	cc.mu.Lock()
	cc.connUnacked += n
	if cc.connUnacked >= connWindow/4 {
		connInc = uint32(cc.connUnacked)
		cc.connUnacked = 0
	}
	if st != nil && !st.recvEnd && !st.removed {
		st.unacked += n
		if st.unacked >= streamWindow/4 {
			streamInc = uint32(st.unacked)
			st.recvWindow += st.unacked
			st.unacked = 0
		}
	}
	closed := cc.closed
	cc.mu.Unlock()
	if closed || connInc == 0 && streamInc == 0 {
		return
	}
	id := uint32(0)
	if st != nil {
		id = st.id
	}
	_ = cc.writeFrames(func(fr *http2.Framer) error {
		if connInc > 0 {
			if err := fr.WriteWindowUpdate(0, connInc); err != nil {
				return err
			}
		}
		if streamInc > 0 {
			return fr.WriteWindowUpdate(id, streamInc)
		}
		return nil
	})
}

// readClock records when the last bytes arrived, for the PING health check: once per
// read from the connection, which at load carries many frames, rather than per frame.
type readClock struct {
	r    io.Reader
	last *atomic.Int64 // unix nanoseconds
}

func (rc *readClock) Read(p []byte) (int, error) {
	n, err := rc.r.Read(p)
	if n > 0 {
		rc.last.Store(time.Now().UnixNano())
	}
	return n, err
}

// readLoop reads the server's frames until the connection fails.
func (cc *ClientConn) readLoop() {
	defer close(cc.readerDone)
	for {
		// An answer's HEADERS frame is read in place (no frame allocated), unless a header
		// block continues: then the Framer checks that a CONTINUATION comes.
		if hd, ok := cc.rd.Headers(cc.hb.continues); ok {
			cc.frames.Add(1)
			cc.hb = headerBlock{streamID: hd.StreamID, endStream: hd.EndStream, fields: cc.hb.fields[:0]}
			err := cc.blockFragment(hd.Fragment, true)
			cc.rd.Done(hd)
			if err != nil {
				cc.readFailed(err)
				return
			}
			continue
		}
		f, err := cc.rd.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				// A HEADERS frame the Framer rejected may have opened a block: its
				// CONTINUATIONs are that stream's, not the block read before (no stream
				// error comes while a block continues: the Framer's order check is first).
				cc.hb = headerBlock{streamID: se.StreamID, fields: cc.hb.fields[:0]}
				cc.streamFailed(se.StreamID, se, se.Code)
				continue
			}
			cc.readFailed(err)
			return
		}
		cc.frames.Add(1)
		if err := cc.handle(f); err != nil {
			cc.readFailed(err)
			return
		}
	}
}

// readFailed ends the connection after a read error or a connection-level protocol error.
func (cc *ClientConn) readFailed(err error) {
	var ce http2.ConnectionError
	if errors.As(err, &ce) {
		cc.wmu.Lock()
		if cc.fr.WriteGoAway(0, http2.ErrCode(ce), nil) == nil {
			_ = cc.bw.Flush()
		}
		cc.wmu.Unlock()
	} else if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	cc.mu.Lock()
	if cc.closed && cc.err != nil {
		err = cc.err
	}
	cc.mu.Unlock()
	cc.closeLocked(err, false)
}

// handle processes one frame.
func (cc *ClientConn) handle(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.HeadersFrame:
		return cc.startBlock(f)
	case *http2.ContinuationFrame:
		return cc.blockFragment(f.HeaderBlockFragment(), f.HeadersEnded())
	case *http2.DataFrame:
		return cc.onData(f)
	case *http2.SettingsFrame:
		return cc.onSettings(f)
	case *http2.WindowUpdateFrame:
		return cc.onWindowUpdate(f)
	case *http2.PingFrame:
		if f.IsAck() {
			return nil // pingCheck sees the frame count move
		}
		data := f.Data
		return cc.writeFrames(func(fr *http2.Framer) error { return fr.WritePing(true, data) })
	case *http2.RSTStreamFrame:
		cc.streamFailed(f.StreamID, http2.StreamError{StreamID: f.StreamID, Code: f.ErrCode}, 0)
		return nil
	case *http2.GoAwayFrame:
		cc.onGoAway(f)
		return nil
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol) // we sent SETTINGS_ENABLE_PUSH 0
	}
	return nil // PRIORITY and unknown frames
}

// streamFor is the open stream id, or nil. A frame for an id never opened is a
// connection error. Called with mu held.
func (cc *ClientConn) streamForLocked(id uint32) (*stream, error) {
	if id%2 == 0 || id >= cc.nextID {
		return nil, http2.ConnectionError(http2.ErrCodeProtocol)
	}
	return cc.streams[id], nil
}

func (cc *ClientConn) onSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	cc.mu.Lock()
	err := f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return err // a ConnectionError: PROTOCOL_ERROR or FLOW_CONTROL_ERROR
		}
		switch s.ID {
		case http2.SettingMaxConcurrentStreams:
			cc.maxStreams = int(min(s.Val, math.MaxInt32))
		case http2.SettingInitialWindowSize:
			delta := int64(s.Val) - int64(cc.peerWindow)
			for _, st := range cc.streams {
				st.sendWindow += delta
			}
			cc.peerWindow = int32(s.Val)
		case http2.SettingMaxFrameSize:
			cc.peerMaxFrame = s.Val
		case http2.SettingEnableConnectProtocol:
			cc.extConnect = s.Val == 1
		}
		return nil
	})
	if err == nil && !cc.gotSettings {
		cc.gotSettings = true
		if _, ok := f.Value(http2.SettingMaxConcurrentStreams); !ok {
			cc.maxStreams = defaultMaxStreams
		}
	}
	cc.cond.Broadcast()
	cc.mu.Unlock()
	if err != nil {
		return err
	}
	err = cc.writeFrames(func(fr *http2.Framer) error {
		return fr.WriteSettingsAck()
	})
	cc.hook()
	return err
}

func (cc *ClientConn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	cc.mu.Lock()
	inc := int64(f.Increment)
	if f.StreamID == 0 {
		defer cc.mu.Unlock()
		if cc.connSend+inc > math.MaxInt32 {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
		cc.connSend += inc
		cc.cond.Broadcast()
		return nil
	}
	st, err := cc.streamForLocked(f.StreamID)
	if err != nil || st == nil {
		cc.mu.Unlock()
		return err
	}
	if st.sendWindow+inc > math.MaxInt32 {
		cc.mu.Unlock()
		cc.streamFailed(f.StreamID, http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeFlowControl}, http2.ErrCodeFlowControl)
		return nil
	}
	st.sendWindow += inc
	cc.cond.Broadcast()
	cc.mu.Unlock()
	return nil
}

// onGoAway stops new streams; streams above the last stream id fail as unprocessed; the
// connection closes when the others have ended.
func (cc *ClientConn) onGoAway(f *http2.GoAwayFrame) {
	cc.mu.Lock()
	cc.draining = true
	cc.goAway = &GoAwayError{LastStreamID: f.LastStreamID, ErrCode: f.ErrCode, DebugData: string(f.DebugData())}
	var cut []*stream
	for id, st := range cc.streams {
		if id > f.LastStreamID {
			cut = append(cut, st)
		}
	}
	for _, st := range cut {
		st.failLocked(&UnprocessedError{StreamID: st.id, Err: cc.goAway})
		st.reset = true // the server forgot it: no RST_STREAM
		cc.removeLocked(st)
	}
	end := cc.endedLocked()
	cc.cond.Broadcast()
	cc.mu.Unlock()
	for _, st := range cut {
		st.abortBody()
	}
	cc.streamsChanged(true, end)
}

// streamFailed ends stream id with err: a RST_STREAM from the server (code 0: answer with
// nothing), or a stream error found reading its frames (answered with RST_STREAM code).
func (cc *ClientConn) streamFailed(id uint32, err error, code http2.ErrCode) {
	cc.mu.Lock()
	st := cc.streams[id]
	if st == nil {
		cc.mu.Unlock()
		if code != 0 && id != 0 {
			cc.resetStream(id, code)
		}
		return
	}
	// A reset after the whole response arrived (a server declining the rest of the
	// request body, RFC 9113 §8.1) leaves the response as it is.
	if !st.recvEnd {
		st.failLocked(err)
	}
	st.reset = true
	cc.removeLocked(st)
	end := cc.endedLocked()
	cc.mu.Unlock()
	st.abortBody()
	if code != 0 {
		cc.resetStream(id, code)
	}
	cc.streamsChanged(true, end)
}
