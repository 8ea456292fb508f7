package h2server

import (
	"errors"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"

	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
)

// Frames are composed in c.wbuf under c.mu and written by flushLocked: whoever flushes
// writes what every stream has put there meanwhile.

// frameHeader is wbuf with the header of an n-byte frame appended (wbuf taken from a pool
// when the connection has none, and made large first if the frame would overflow a small
// one).
func (c *conn) frameHeader(n int, t http2.FrameType, fl http2.Flags, id uint32) []byte {
	c.roomFor(frameHeaderLen + n)
	b := c.wbuf
	if b == nil {
		b = getWbuf(c.wbufCap())
	}
	return append(b, byte(n>>16), byte(n>>8), byte(n), byte(t), byte(fl), byte(id>>24)&0x7f, byte(id>>16), byte(id>>8), byte(id))
}

// wbufCap is the size of the connection's write buffers now.
func (c *conn) wbufCap() int {
	if c.wbufBig {
		return wbufLarge
	}
	return wbufSmall
}

// roomFor switches the connection to large write buffers when n more bytes would
// overflow a small one, and moves what wbuf holds into a large one when wbuf is a small
// one (or the spare taken after the switch) that n more bytes would overflow.
func (c *conn) roomFor(n int) {
	if !c.wbufBig && len(c.wbuf)+n > wbufSmall {
		c.wbufBig = true
	}
	if c.wbufBig && c.wbuf != nil && cap(c.wbuf) < wbufLarge && len(c.wbuf)+n > cap(c.wbuf) {
		b := append(getWbuf(wbufLarge), c.wbuf...)
		putWbuf(c.wbuf)
		c.wbuf = b
	}
}

// Write buffers, small and large: a connection has at most two (one written, one filled)
// and gives them back once it has been a tick without a stream (timers), so idle
// connections hold none.
var (
	smallWbufs = sync.Pool{New: func() any { b := make([]byte, 0, wbufSmall); return &b }}
	largeWbufs = sync.Pool{New: func() any { b := make([]byte, 0, wbufLarge); return &b }}
)

func getWbuf(size int) []byte {
	if size == wbufLarge {
		return (*largeWbufs.Get().(*[]byte))[:0]
	}
	return (*smallWbufs.Get().(*[]byte))[:0]
}

// putWbuf gives b back to its pool; a buffer that a large header block grew is dropped.
func putWbuf(b []byte) {
	switch cap(b) {
	case wbufSmall:
		b = b[:0]
		smallWbufs.Put(&b)
	case wbufLarge:
		b = b[:0]
		largeWbufs.Put(&b)
	}
}

func appendSetting(b []byte, id http2.SettingID, v uint32) []byte {
	return append(b, byte(id>>8), byte(id), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// writeServerPreface queues the server's SETTINGS and the connection window beyond the
// default.
func (c *conn) writeServerPreface() {
	cfg := c.cfg
	b := c.frameHeader(6*6, http2.FrameSettings, 0, 0)
	b = appendSetting(b, http2.SettingMaxFrameSize, cfg.maxFrame)
	b = appendSetting(b, http2.SettingMaxConcurrentStreams, cfg.maxStreams)
	b = appendSetting(b, http2.SettingMaxHeaderListSize, cfg.maxHeaderList)
	b = appendSetting(b, http2.SettingHeaderTableSize, cfg.decoderTable)
	b = appendSetting(b, http2.SettingInitialWindowSize, uint32(cfg.streamWindow))
	b = appendSetting(b, http2.SettingEnableConnectProtocol, 1)
	c.wbuf = b
	if d := int64(cfg.connWindow) - initialWindow; d > 0 {
		c.writeWindowUpdate(0, uint32(d))
		c.recvWin += d
	}
}

func (c *conn) writeSettingsAck() {
	c.wbuf = c.frameHeader(0, http2.FrameSettings, http2.FlagSettingsAck, 0)
}

func (c *conn) writePing(ack bool, data [8]byte) {
	var fl http2.Flags
	if ack {
		fl = http2.FlagPingAck
	}
	c.wbuf = append(c.frameHeader(8, http2.FramePing, fl, 0), data[:]...)
}

func (c *conn) writeRST(id uint32, code http2.ErrCode) {
	b := c.frameHeader(4, http2.FrameRSTStream, 0, id)
	b = append(b, byte(code>>24), byte(code>>16), byte(code>>8), byte(code))
	c.wbuf = b
}

func (c *conn) writeWindowUpdate(id, inc uint32) {
	b := c.frameHeader(4, http2.FrameWindowUpdate, 0, id)
	b = append(b, byte(inc>>24)&0x7f, byte(inc>>16), byte(inc>>8), byte(inc))
	c.wbuf = b
}

func (c *conn) writeGoAway(last uint32, code http2.ErrCode) {
	b := c.frameHeader(8, http2.FrameGoAway, 0, 0)
	b = append(b, byte(last>>24)&0x7f, byte(last>>16), byte(last>>8), byte(last),
		byte(code>>24), byte(code>>16), byte(code>>8), byte(code))
	c.wbuf = b
}

// writeHeaderBlock queues a header block as HEADERS and as many CONTINUATION frames as
// the peer's frame size needs.
func (c *conn) writeHeaderBlock(id uint32, block []byte, end bool) {
	t, fl := http2.FrameHeaders, http2.Flags(0)
	if end {
		fl = http2.FlagHeadersEndStream
	}
	for {
		n := min(len(block), c.peerFrame)
		f := fl
		if n == len(block) {
			f |= http2.FlagHeadersEndHeaders
		}
		c.wbuf = append(c.frameHeader(n, t, f, id), block[:n]...)
		block = block[n:]
		if len(block) == 0 {
			return
		}
		t, fl = http2.FrameContinuation, 0
	}
}

// writeHead queues a response head (status >= 200), an informational answer (1xx), or
// trailers (status 0: the fields named in only). A head carries st's Content-Length (the
// handler's, or the whole body's when the handler is done) and a Date unless h has one.
func (c *conn) writeHead(st *stream, status int, h http.Header, end bool, only []string) {
	if only != nil {
		c.beginHead(status)
		for _, k := range only {
			c.fieldValues(k, h[k], false)
		}
		c.endHead(st, status, end, false)
		return
	}
	hasDate, _ := c.collect(h)
	c.writeCollected(st, status, end, hasDate)
}

// collect gathers h's fields into c.pairs in the order of their names, each with its
// values as the map holds them: one pass over the map, and no lookup per name when they
// are written (writeCollected). It reports whether h has a Date, and a TrailerPrefix key.
func (c *conn) collect(h http.Header) (hasDate, prefixed bool) {
	clear(c.pairs) // the values of an earlier head belong to another handler's map
	c.pairs = c.pairs[:0]
	for k, vv := range h {
		c.pairs = append(c.pairs, headerPair{k, vv})
		hasDate = hasDate || k == "Date"
		prefixed = prefixed || strings.HasPrefix(k, http.TrailerPrefix)
	}
	sortPairs(c.pairs)
	return hasDate, prefixed
}

// sortPairs sorts p by name: in place by insertion for the few fields of most heads
// (slices.SortFunc's calls of a comparison cost more there), else by SortFunc.
func sortPairs(p []headerPair) {
	if len(p) > 12 {
		slices.SortFunc(p, func(a, b headerPair) int { return strings.Compare(a.k, b.k) })
		return
	}
	for i := 1; i < len(p); i++ {
		for j := i; j > 0 && p[j].k < p[j-1].k; j-- {
			p[j], p[j-1] = p[j-1], p[j]
		}
	}
}

// writeCollected queues a head (or 1xx) of the fields collect gathered, without st's
// declared trailers, with a Date unless they have one (hasDate).
func (c *conn) writeCollected(st *stream, status int, end, hasDate bool) {
	c.beginHead(status)
	for _, p := range c.pairs {
		if !slices.Contains(st.trailers, p.k) {
			c.fieldValues(p.k, p.vv, true)
		}
	}
	c.endHead(st, status, end, hasDate)
}

// beginHead starts a block: the :status of a head or 1xx (status 0: trailers).
func (c *conn) beginHead(status int) {
	c.enc.Begin()
	if status != 0 {
		c.field(":status", statusText(status))
	}
}

// endHead ends a block and queues it: a head (status >= 200) carries st's Content-Length
// (the handler's, or the whole body's when the handler is done) and a Date unless it has
// one (hasDate).
func (c *conn) endHead(st *stream, status int, end, hasDate bool) {
	if status >= 200 {
		switch {
		case st.declCL >= 0:
			c.enc.WriteFieldInt("content-length", st.declCL)
		case st.handlerDone && bodyAllowed(status) && (len(st.out) > 0 || st.req.Method != http.MethodHead):
			c.enc.WriteFieldInt("content-length", int64(len(st.out)))
		}
		if !hasDate {
			c.field("date", dateText())
		}
	}
	c.writeHeaderBlock(st.id, c.enc.Bytes(), end)
}

// headerPair is one name of a header map and its values.
type headerPair struct {
	k  string
	vv []string
}

func (c *conn) field(name, value string) {
	c.enc.WriteField(name, value)
}

// fieldValues encodes the values vv of the field named k (canonical), except what HTTP/2
// does not carry: an invalid name (a TrailerPrefix key among them) or value, a
// connection-specific field, and in a head the Content-Length (writeHead's own).
func (c *conn) fieldValues(k string, vv []string, head bool) {
	switch k {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Upgrade":
		return
	case "Content-Length":
		if head {
			return
		}
	}
	lk, ok := c.lowerName(k)
	if !ok {
		return
	}
	te := lk == "transfer-encoding"
	for _, v := range vv {
		if !http1.ValidValueString(v) || (te && v != "trailers") {
			continue
		}
		c.field(lk, v)
	}
}

// lowerName is a field name as HTTP/2 sends it (lowercase); false for a name that is not
// a valid token.
func (c *conn) lowerName(k string) (string, bool) {
	if lk, ok := c.lower[k]; ok { // the names this connection's answers use: a small map
		return lk, lk != ""
	}
	lk, ok := http1.LowerName(k)
	if !ok && httpguts.ValidHeaderFieldName(k) {
		b := []byte(k)
		for i, ch := range b {
			if 'A' <= ch && ch <= 'Z' {
				b[i] = ch + 'a' - 'A'
			}
		}
		lk = string(b)
	}
	if c.lower == nil {
		c.lower = map[string]string{}
	}
	if len(c.lower) < cacheMax {
		c.lower[k] = lk
	}
	return lk, lk != ""
}

// flushLocked writes wbuf unless another goroutine is writing (it writes what was added
// meanwhile before it stops). mu is let go during the write. The error is the
// connection's (nil while it works).
func (c *conn) flushLocked() error {
	for len(c.wbuf) > 0 && !c.writing && c.werr == nil {
		c.writing = true
		buf := c.wbuf
		c.wbuf, c.spare = c.spare, nil
		c.controlOut = 0
		c.mu.Unlock()
		_, err := c.nc.Write(buf)
		c.mu.Lock()
		c.writing = false
		if c.spare == nil && cap(buf) == c.wbufCap() {
			c.spare = buf[:0]
		} else {
			putWbuf(buf) // a small buffer after the switch to large ones, or one a large header block grew
		}
		if err != nil && c.werr == nil {
			c.werr = err
			c.cutLocked() // the reader ends, and with it the connection
		}
		c.wcond.Broadcast()
	}
	return c.werr
}

// flushSoonLocked is the flush at the end of a stream: when no other flush is about to
// happen, the goroutine lets the others that are ready run first (runtime.Gosched), so
// that the answers they finish meanwhile go out in the same write; when one is about to
// happen, it will carry these frames too. Nothing waits on anything but the scheduler.
func (c *conn) flushSoonLocked() {
	if c.flushSoon || len(c.wbuf) == 0 {
		return
	}
	c.flushSoon = true
	c.mu.Unlock()
	runtime.Gosched()
	c.mu.Lock()
	c.flushSoon = false
	_ = c.flushLocked()
}

// sendData queues p as DATA frames of st (END_STREAM on the last with end), within the
// peer's frame size and both send windows, waiting for window or buffer room as needed.
func (c *conn) sendData(st *stream, p []byte, end bool) error {
	for {
		if err := st.writeErr(); err != nil {
			return err
		}
		need := frameHeaderLen + min(len(p), maxData)
		c.roomFor(need)
		if len(c.wbuf)+need > c.wbufCap() && len(c.wbuf) > 0 {
			if c.writing {
				c.wcond.Wait()
			} else {
				_ = c.flushLocked()
			}
			continue
		}
		if len(p) == 0 {
			if end {
				c.wbuf = c.frameHeader(0, http2.FrameData, http2.FlagDataEndStream, st.id)
			}
			return nil
		}
		n := int64(min(len(p), c.peerFrame, maxData))
		n = min(n, c.sendWin, st.sendWin)
		if n <= 0 {
			if len(c.wbuf) > 0 && !c.writing {
				_ = c.flushLocked() // what is queued may be what the peer waits for to open the window
				continue
			}
			c.wcond.Wait()
			continue
		}
		var fl http2.Flags
		if end && int(n) == len(p) {
			fl = http2.FlagDataEndStream
		}
		c.wbuf = append(c.frameHeader(int(n), http2.FrameData, fl, st.id), p[:n]...)
		c.sendWin -= n
		st.sendWin -= n
		p = p[n:]
		if len(p) == 0 {
			return nil
		}
	}
}

// writeErr is why st can no longer be written (nil: it can).
func (st *stream) writeErr() error {
	c := st.c
	switch {
	case st.ended && st.endErr != nil:
		return st.endErr
	case st.ended:
		return errStreamDone
	case c.werr != nil:
		return errConnClosed
	}
	return nil
}

var statusTexts [600]string

func init() {
	for i := 100; i < len(statusTexts); i++ {
		statusTexts[i] = strconv.Itoa(i)
	}
}

func statusText(code int) string {
	if code < len(statusTexts) {
		return statusTexts[code]
	}
	return strconv.Itoa(code)
}

// dateText is the Date field for now, formatted once a second.
func dateText() string {
	now := time.Now()
	sec := now.Unix()
	if d := date.Load(); d != nil && d.sec == sec {
		return d.text
	}
	d := &dateCache{sec: sec, text: now.UTC().Format(http.TimeFormat)}
	date.Store(d)
	return d.text
}

type dateCache struct {
	sec  int64
	text string
}

var date atomic.Pointer[dateCache]

// bodyAllowed reports whether a response with status may have a body (RFC 9110 6.4.1).
func bodyAllowed(status int) bool {
	switch {
	case status >= 100 && status <= 199:
		return false
	case status == http.StatusNoContent, status == http.StatusNotModified:
		return false
	}
	return true
}

const (
	frameHeaderLen = 9
	maxData        = minFrame // a DATA frame's most, so that frames fit the write buffer
)

var errStreamDone = errors.New("h2server: stream already ended")
