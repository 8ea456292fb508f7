package h2client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strconv"
	"sync"
	"sync/atomic"

	"golang.org/x/net/http2"

	"github.com/lucid-mesh/lucid/internal/dataplane/bufpool"
	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
	"github.com/lucid-mesh/lucid/internal/dataplane/reqctx"
)

// smallBody is the largest request body of known length that RoundTrip reads itself and
// sends with the HEADERS in one write.
const smallBody = 16 << 10

// stream is one request/response exchange. It is the response body.
type stream struct {
	cc     *ClientConn
	req    *http.Request
	isHead bool
	stop   func() bool // ends a context.AfterFunc watch; nil without one
	rctx   *reqctx.Ctx // the request's context when it is the proxy's own (watched with no allocation)
	watch  reqctx.Watch
	told   atomic.Bool // Cancelled ran: a goroutine resetting the stream may still run

	recvWake chan struct{} // headers, data, end or failure arrived

	body     io.ReadCloser // request body still to send (body writer); nil when none
	bodyOnce sync.Once

	// Under cc.mu.
	id         uint32
	resp       *http.Response // final response headers
	ra         *respAlloc     // resp's memory
	buf        []byte         // response body received, not yet read (from off)
	bufp       *[]byte        // buf's pooled slice
	off        int
	recvEnd    bool        // END_STREAM received
	err        error       // the stream failed: RoundTrip or Read return it
	trailer    http.Header // received, given to resp.Trailer at EOF
	wantLen    int64       // response Content-Length, -1 when none
	gotLen     int64
	unacked    int // body bytes read, not yet given back to the stream window
	recvWindow int // how much the server may still send
	sendWindow int64
	sentEnd    bool // END_STREAM sent
	reset      bool // RST_STREAM sent or received, or forgotten by GOAWAY
	removed    bool
	readDone   bool // Close called on the response body
	writing    bool // the body writer goroutine (writeBody) has not returned yet
}

// signal wakes the goroutine waiting for the response.
func (st *stream) signal() {
	select {
	case st.recvWake <- struct{}{}:
	default:
	}
}

// failLocked records err as the stream's failure (the first wins). Called with cc.mu held.
func (st *stream) failLocked(err error) {
	if st.err == nil {
		st.err = err
	}
	st.signal()
	st.cc.cond.Broadcast()
}

// abortBody closes the request body once (stopping a body writer blocked reading it).
// Called without locks.
func (st *stream) abortBody() {
	st.cc.mu.Lock()
	b := st.body
	st.body = nil
	st.cc.mu.Unlock()
	if b != nil {
		st.bodyOnce.Do(func() { _ = b.Close() })
	}
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, smallBody); return &b }}

// RoundTrip sends req on a new stream and returns the response once its headers arrive;
// a streaming request body goes on being sent after that. The request's context cancels
// the stream (RST_STREAM CANCEL); closing the response body before its end resets it too.
// The request body is always closed.
func (cc *ClientConn) RoundTrip(req *http.Request) (*http.Response, error) {
	body := req.Body
	if body == http.NoBody {
		body = nil
	}
	fail := func(err error) (*http.Response, error) {
		if body != nil {
			_ = body.Close()
		}
		return nil, notWrittenError{err}
	}
	hdr, err := checkRequest(req)
	if err != nil {
		return fail(err)
	}
	st := spareStreams.Get().(*stream) // a recycled stream's memory (Recycle), or a new one
	st.cc, st.req, st.isHead, st.wantLen = cc, req, req.Method == http.MethodHead, -1
	if st.recvWake == nil {
		st.recvWake = make(chan struct{}, 1)
	}

	// A small body already at hand goes with the HEADERS.
	var small []byte
	var smallBuf *[]byte
	if body != nil && req.ContentLength > 0 && req.ContentLength <= smallBody && !hdr.trailers && !hdr.extConnect {
		smallBuf = bufPool.Get().(*[]byte)
		small = (*smallBuf)[:req.ContentLength]
		if _, err := io.ReadFull(body, small); err != nil {
			bufPool.Put(smallBuf)
			return fail(err)
		}
		_ = body.Close()
		body = nil
	}
	putSmall := func() {
		if smallBuf != nil {
			bufPool.Put(smallBuf)
			smallBuf = nil
		}
	}
	ctx := req.Context()
	if rc, ok := ctx.(*reqctx.Ctx); ok {
		if !rc.Watch(&st.watch, st) {
			putSmall()
			return fail(ctx.Err())
		}
		st.rctx = rc
	} else if ctx.Done() != nil {
		st.stop = context.AfterFunc(ctx, func() { st.cancel(ctx) })
	}
	if err := cc.reserve(st, hdr.extConnect); err != nil {
		putSmall()
		st.stopWatch()
		return fail(err)
	}
	st.body = body

	cc.wmu.Lock()
	cc.mu.Lock()
	cc.reserved--
	if cc.closed || cc.draining || st.err != nil { // GOAWAY may have come since reserve
		err := st.err
		switch {
		case err != nil:
		case cc.closed:
			err = &UnprocessedError{Err: cc.err}
		case cc.goAway != nil:
			err = &UnprocessedError{Err: cc.goAway}
		default:
			err = &UnprocessedError{Err: ErrClosed}
		}
		end := cc.endedLocked() // the GOAWAY waited for this reservation
		cc.cond.Broadcast()
		cc.mu.Unlock()
		cc.wmu.Unlock()
		putSmall()
		st.stopWatch()
		if end {
			cc.closeLocked(cc.goAway, false)
		}
		return fail(err)
	}
	st.id = cc.nextID
	cc.nextID += 2
	cc.streams[st.id] = st
	st.sendWindow = int64(cc.peerWindow)
	st.recvWindow = streamWindow
	maxFrame := cc.peerMaxFrame
	endWithHeaders := body == nil && small == nil
	sendSmall := small != nil && cc.connSend >= int64(len(small)) && st.sendWindow >= int64(len(small))
	if sendSmall {
		cc.connSend -= int64(len(small))
		st.sendWindow -= int64(len(small))
	}
	if endWithHeaders || sendSmall {
		st.sentEnd = true
	}
	cc.mu.Unlock()
	err = cc.writeHeaders(st.id, req, hdr, endWithHeaders, maxFrame)
	if err == nil && sendSmall {
		err = writeData(cc.fr, st.id, small, true, maxFrame)
	}
	if err == nil {
		err = cc.flushSoon()
	}
	cc.wmu.Unlock()
	if err != nil {
		putSmall()
		cc.closeLocked(err, false)
		st.stopWatch()
		if body != nil {
			st.abortBody()
		}
		return nil, err
	}
	if body != nil || (small != nil && !sendSmall) {
		var prefix []byte
		if !sendSmall {
			prefix = small
		} else {
			putSmall()
		}
		cc.mu.Lock()
		st.writing = true
		cc.mu.Unlock()
		go st.writeBody(prefix, smallBuf, body, hdr)
	} else {
		putSmall()
	}
	return st.awaitResponse()
}

// reserve waits for a free stream slot on cc. Called without locks.
func (cc *ClientConn) reserve(st *stream, extConnect bool) error {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for {
		switch {
		case st.err != nil:
			return st.err
		case cc.closed:
			return &UnprocessedError{Err: cc.err}
		case cc.goAway != nil:
			return &UnprocessedError{Err: cc.goAway}
		case cc.draining:
			return &UnprocessedError{Err: ErrClosed}
		case extConnect && cc.gotSettings && !cc.extConnect:
			return errors.New("http2: the server does not support extended CONNECT (SETTINGS_ENABLE_CONNECT_PROTOCOL)")
		}
		if uint64(cc.nextID)+2*uint64(cc.reserved) > 1<<31-1 {
			return &UnprocessedError{Err: errIDsExhausted}
		}
		if len(cc.streams)+cc.reserved < cc.maxStreams && (!extConnect || cc.gotSettings) {
			cc.reserved++
			return nil
		}
		cc.cond.Wait()
	}
}

// cancel ends the stream because its context ended.
func (st *stream) cancel(ctx context.Context) {
	cc := st.cc
	err := context.Cause(ctx)
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		err = ctxErr // the pool reads the cause from the context itself
	}
	cc.mu.Lock()
	st.failLocked(err)
	sendRST := st.id != 0 && !st.reset && !st.removed
	st.reset = true
	cc.removeLocked(st)
	end := cc.endedLocked()
	cc.mu.Unlock()
	st.abortBody()
	if sendRST {
		cc.resetStream(st.id, http2.ErrCodeCancel)
	}
	cc.streamsChanged(true, end)
}

func (st *stream) stopWatch() {
	if st.stop != nil {
		st.stop()
	}
	if st.rctx != nil {
		st.rctx.Unwatch(&st.watch)
	}
}

// Cancelled is told when the request's reqctx.Ctx is cancelled (under its lock: the
// stream is reset on a goroutine of its own).
func (st *stream) Cancelled() {
	st.told.Store(true)
	go st.cancel(st.rctx)
}

// awaitResponse waits for the response headers, or the stream's failure.
func (st *stream) awaitResponse() (*http.Response, error) {
	cc := st.cc
	for {
		cc.mu.Lock()
		if st.resp != nil {
			resp := st.resp
			cc.mu.Unlock()
			return resp, nil
		}
		if err := st.err; err != nil {
			cc.mu.Unlock()
			st.finish(http2.ErrCodeCancel)
			return nil, err
		}
		cc.mu.Unlock()
		<-st.recvWake
	}
}

// finish ends the stream on our side: RST_STREAM code when it is still open either way.
func (st *stream) finish(code http2.ErrCode) {
	cc := st.cc
	st.stopWatch()
	cc.mu.Lock()
	sendRST := !st.reset && !st.removed && (!st.recvEnd || !st.sentEnd)
	if sendRST {
		st.reset = true
	}
	if st.err == nil && !st.recvEnd {
		st.err = errBodyClosed
	}
	wasOpen := !st.removed
	cc.removeLocked(st)
	end := cc.endedLocked()
	cc.mu.Unlock()
	st.abortBody()
	if sendRST {
		cc.resetStream(st.id, code)
	}
	cc.streamsChanged(wasOpen, end)
}

var errBodyClosed = errors.New("http2: response body closed")

// Read reads the response body.
func (st *stream) Read(p []byte) (int, error) {
	cc := st.cc
	for {
		cc.mu.Lock()
		if st.readDone {
			cc.mu.Unlock()
			return 0, errBodyClosed
		}
		if st.off < len(st.buf) {
			n := copy(p, st.buf[st.off:])
			st.off += n
			if st.off == len(st.buf) {
				st.buf, st.off = st.buf[:0], 0
			}
			cc.mu.Unlock()
			cc.giveBack(st, n)
			return n, nil
		}
		if st.recvEnd {
			tr := st.trailer
			st.trailer = nil
			cc.mu.Unlock()
			// The trailers go into resp.Trailer on the reader's goroutine, at EOF, as
			// net/http does: the caller may read resp.Trailer until then.
			if len(tr) > 0 {
				if st.resp.Trailer == nil {
					st.resp.Trailer = make(http.Header, len(tr))
				}
				for k, v := range tr {
					st.resp.Trailer[k] = v
				}
			}
			return 0, io.EOF
		}
		if st.err != nil {
			err := st.err
			cc.mu.Unlock()
			return 0, err
		}
		cc.mu.Unlock()
		if len(p) == 0 {
			return 0, nil
		}
		<-st.recvWake
	}
}

// Close ends the response body; before the end of the response it resets the stream
// (RST_STREAM CANCEL), as does a request body still being sent.
func (st *stream) Close() error {
	cc := st.cc
	cc.mu.Lock()
	if st.readDone {
		cc.mu.Unlock()
		return nil
	}
	st.readDone = true
	st.signal() // a Read blocked on another goroutine returns
	unread := len(st.buf) - st.off
	if st.bufp != nil {
		*st.bufp = st.buf
		recvBufs.Put(st.bufp) // dropped if it grew
	}
	st.buf, st.bufp, st.off = nil, nil, 0
	cc.mu.Unlock()
	cc.giveBack(nil, unread)
	st.finish(http2.ErrCodeCancel)
	return nil
}

// onHeaders handles response headers and trailers.
func (cc *ClientConn) onHeaders(f *headerBlock) error {
	cc.mu.Lock()
	st, err := cc.streamForLocked(f.streamID)
	if err != nil || st == nil {
		cc.mu.Unlock()
		return err
	}
	if f.truncated {
		cc.mu.Unlock()
		cc.streamFailed(st.id, errors.New("http2: response header list too large"), http2.ErrCodeProtocol)
		return nil
	}
	if st.resp != nil { // trailers
		if !f.StreamEnded() || len(f.PseudoFields()) > 0 {
			cc.mu.Unlock()
			cc.streamFailed(st.id, http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol, Cause: errors.New("malformed response trailers")}, http2.ErrCodeProtocol)
			return nil
		}
		tr := make(http.Header, len(f.fields))
		for _, hf := range f.RegularFields() {
			k := http1.CanonicalKey(hf.Name)
			tr[k] = append(tr[k], hf.Value)
		}
		st.trailer = tr
		cc.endRecvLocked(st)
		return nil
	}
	resp, err := st.response(f) //nolint:bodyclose // made here; the caller of RoundTrip closes it
	if err != nil {
		cc.mu.Unlock()
		cc.streamFailed(st.id, err, http2.ErrCodeProtocol)
		return nil
	}
	if resp == nil { // 1xx
		cc.mu.Unlock()
		if trace := httptrace.ContextClientTrace(st.req.Context()); trace != nil && trace.Got1xxResponse != nil {
			code, _ := strconv.Atoi(f.PseudoValue("status"))
			h := make(textproto.MIMEHeader, len(f.fields))
			for _, hf := range f.RegularFields() {
				k := http1.CanonicalKey(hf.Name)
				h[k] = append(h[k], hf.Value)
			}
			_ = trace.Got1xxResponse(code, h)
		}
		return nil
	}
	st.resp = resp
	if f.StreamEnded() || st.isHead {
		if f.StreamEnded() {
			cc.endRecvLocked(st)
			return nil
		}
	}
	st.signal()
	cc.mu.Unlock()
	return nil
}

// endRecvLocked records END_STREAM from the server; a stream ended both ways closes.
// Unlocks mu.
func (cc *ClientConn) endRecvLocked(st *stream) {
	if st.wantLen >= 0 && st.gotLen != st.wantLen && !st.isHead {
		cc.mu.Unlock()
		cc.streamFailed(st.id, http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol,
			Cause: errors.New("response body length does not match its Content-Length")}, http2.ErrCodeProtocol)
		return
	}
	st.recvEnd = true
	st.signal()
	closed := st.sentEnd && !st.removed
	if closed {
		cc.removeLocked(st)
	}
	end := cc.endedLocked()
	cc.mu.Unlock()
	cc.streamsChanged(closed, end)
}

// response builds the final response from its headers; nil for a 1xx. Called with mu held.
func (st *stream) response(f *headerBlock) (*http.Response, error) {
	status := f.PseudoValue("status")
	code, err := strconv.Atoi(status)
	if status == "" || err != nil || code < 100 || code > 999 || len(status) != 3 {
		return nil, http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol, Cause: errors.New("malformed response: invalid :status " + strconv.Quote(status))}
	}
	if code < 200 {
		if code == 101 || f.StreamEnded() {
			return nil, http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol, Cause: errors.New("malformed response: invalid informational status " + status)}
		}
		return nil, nil
	}
	regular := f.RegularFields()
	ra := respAllocs.Get().(*respAlloc)
	h := ra.h
	if h == nil {
		h = make(http.Header, len(regular))
		ra.h = h
	}
	vals := ra.vals[:]
	if len(regular) > len(vals) {
		vals = make([]string, len(regular))
	}
	// Each value is set without looking first: a name seldom repeats, and when one did
	// the map has fewer keys than were set (below).
	var trailerKeys []string
	set, hasLength := 0, false
	for i, hf := range regular {
		k := http1.CanonicalKey(hf.Name)
		switch k {
		case "Trailer":
			trailerKeys = append(trailerKeys, hf.Value)
			continue
		case "Content-Length":
			hasLength = true
		}
		vals[i] = hf.Value
		h[k] = vals[i : i+1 : i+1]
		set++
	}
	if len(h) < set {
		http1.Regroup(h, vals[:len(regular)], func(i int) string {
			if k := http1.CanonicalKey(regular[i].Name); k != "Trailer" {
				return k
			}
			return ""
		})
	}
	resp := &ra.resp
	*resp = http.Response{
		Status:        statusLine(code, status),
		StatusCode:    code,
		Proto:         "HTTP/2.0",
		ProtoMajor:    2,
		Header:        h,
		ContentLength: -1,
		Body:          st,
		Request:       st.req,
		TLS:           st.cc.tls,
	}
	var cl []string
	if hasLength {
		cl = h["Content-Length"]
	}
	switch {
	case len(cl) == 1:
		n, err := strconv.ParseUint(cl[0], 10, 63)
		if err != nil {
			ra.Recycle()
			return nil, http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol, Cause: errors.New("malformed response: invalid Content-Length")}
		}
		resp.ContentLength = int64(n)
		if !st.isHead && code != http.StatusNoContent && code != http.StatusNotModified {
			st.wantLen = int64(n)
		}
	case len(cl) > 1:
		ra.Recycle()
		return nil, http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol, Cause: errors.New("malformed response: several Content-Length values")}
	case f.StreamEnded() && !st.isHead:
		resp.ContentLength = 0
	}
	for _, v := range trailerKeys {
		for _, k := range splitComma(v) {
			if resp.Trailer == nil {
				resp.Trailer = make(http.Header)
			}
			resp.Trailer[textproto.CanonicalMIMEHeaderKey(k)] = nil
		}
	}
	st.ra = ra
	return resp, nil
}

// respAlloc is a response with the array its header values are slices of (when it has
// at most that many fields), in one allocation: they live as long as one another; and its
// header map. Its memory serves a later response once Recycle says nothing reaches it.
type respAlloc struct {
	resp http.Response
	vals [8]string
	slot [1]string   // ValueSlot's
	h    http.Header // resp.Header; kept, emptied, when the memory is recycled
}

// respAllocs holds the memory of responses that nothing reaches any more.
var respAllocs = sync.Pool{New: func() any { return new(respAlloc) }}

// Recycle gives ra's memory, header map included, to a later response. The caller
// promises that the body was closed and that nothing holds the response or its header map
// any more: not the caller, and not whoever it gave the map to. Called once at most.
func (ra *respAlloc) Recycle() {
	*ra = respAlloc{h: bufpool.EmptyHeader(ra.h)}
	respAllocs.Put(ra)
}

// Recycler returns what recycles resp's memory (Recycle) when resp is the answer of a
// RoundTrip of this package and body its body (resp.Body, or what the caller wrapped):
// the stream, whose Recycle gives back the answer's memory and its own; nil otherwise.
func Recycler(resp *http.Response, body io.ReadCloser) interface{ Recycle() } {
	if st, ok := body.(*stream); ok && st.ra != nil && &st.ra.resp == resp {
		return st
	}
	return nil
}

// ValueSlot is a one-value slice that lives, and is recycled, with the stream's answer:
// for a field the caller adds to the answer's header map, without an allocation.
func (st *stream) ValueSlot() []string { return st.ra.slot[:1:1] }

// spareStreams holds the memory of streams that nothing reaches any more.
var spareStreams = sync.Pool{New: func() any { return new(stream) }}

// Recycle gives back the answer's memory (respAlloc.Recycle's contract) and the stream's
// own when the stream is over for every goroutine of the connection: sent and received to
// the end, closed, taken out of the connection's streams, no request body left to send
// and its writer returned (it still writes the last frame and closes the body after
// END_STREAM is marked sent), and its context watched without a goroutine (reqctx) and
// never told of a cancellation (whose reset runs on a goroutine of its own). Otherwise
// the stream is left to the GC.
func (st *stream) Recycle() {
	cc := st.cc
	cc.mu.Lock()
	over := st.removed && st.recvEnd && st.sentEnd && st.readDone && st.body == nil && st.bufp == nil && !st.writing
	cc.mu.Unlock()
	if ra := st.ra; ra != nil {
		st.resp, st.ra = nil, nil
		ra.Recycle()
	}
	if !over || st.stop != nil || st.told.Load() {
		return
	}
	wake := st.recvWake
	select {
	case <-wake: // a signal nobody waited for
	default:
	}
	*st = stream{recvWake: wake}
	spareStreams.Put(st)
}

// onData handles a DATA frame.
func (cc *ClientConn) onData(f *http2.DataFrame) error {
	n := int(f.Length)
	data := f.Data()
	cc.mu.Lock()
	st, err := cc.streamForLocked(f.StreamID)
	if err != nil {
		cc.mu.Unlock()
		return err
	}
	if st == nil || st.readDone || st.reset {
		cc.mu.Unlock()
		cc.giveBack(nil, n) // a stream we reset: the connection window still counts it
		return nil
	}
	if st.resp == nil || st.recvEnd {
		cc.mu.Unlock()
		cc.giveBack(nil, n)
		cc.streamFailed(st.id, http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol, Cause: errors.New("malformed response: DATA before HEADERS")}, http2.ErrCodeProtocol)
		return nil
	}
	if n > st.recvWindow {
		cc.mu.Unlock()
		cc.giveBack(nil, n)
		cc.streamFailed(st.id, http2.StreamError{StreamID: st.id, Code: http2.ErrCodeFlowControl}, http2.ErrCodeFlowControl)
		return nil
	}
	st.recvWindow -= n
	st.gotLen += int64(len(data))
	if st.wantLen >= 0 && st.gotLen > st.wantLen {
		cc.mu.Unlock()
		cc.giveBack(nil, n)
		cc.streamFailed(st.id, http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol,
			Cause: errors.New("response body longer than its Content-Length")}, http2.ErrCodeProtocol)
		return nil
	}
	if len(data) > 0 {
		if st.bufp == nil {
			st.bufp = recvBufs.Get(st.wantLen)
			st.buf = *st.bufp
		}
		st.buf = append(st.buf, data...)
		st.signal()
	}
	padding := n - len(data)
	if f.StreamEnded() {
		cc.endRecvLocked(st)
	} else {
		cc.mu.Unlock()
	}
	cc.giveBack(nil, padding)
	return nil
}

// recvBufs hold received body bytes until they are read, given back when the body ends.
var recvBufs = bufpool.NewSized(16 << 10)

func splitComma(s string) []string {
	var out []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != ',' {
			i++
		}
		if v := trimOWS(s[:i]); v != "" {
			out = append(out, v)
		}
		if i == len(s) {
			break
		}
		s = s[i+1:]
	}
	return out
}

func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// statusLines are Response.Status for the codes net/http names, made once.
var statusLines = func() (t [600]string) {
	for c := 100; c < len(t); c++ {
		if txt := http.StatusText(c); txt != "" {
			t[c] = strconv.Itoa(c) + " " + txt
		}
	}
	return t
}()

// statusLine is Response.Status for code (status its three digits).
func statusLine(code int, status string) string {
	if code < len(statusLines) && statusLines[code] != "" {
		return statusLines[code]
	}
	return status + " " + http.StatusText(code)
}
