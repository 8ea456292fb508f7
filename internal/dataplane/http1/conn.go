package http1

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// state is where in the byte stream a Conn is.
type state uint8

const (
	stStart     state = iota // connection start: HTTP/2 prior knowledge, or a first head
	stHead                   // reading a request head
	stBody                   // a Content-Length body: remain bytes left
	stChunkSize              // a chunk-size line
	stChunkData              // chunk data: remain bytes left
	stChunkCRLF              // the CRLF after chunk data
	stTrailer                // a trailer line, or the empty line that ends the message
	stPass                   // not HTTP/1.1 requests any more (HTTP/2, upgrade, CONNECT)
	stDiscard                // after a rejection: input is dropped
	stBroken                 // after broken body framing: the stream ends here
)

// h2Preface is what an HTTP/2 client with prior knowledge (h2c) sends first.
var h2Preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

// standIn is the request net/http is handed in place of a rejected head: it has no body,
// asks for the connection to close, and is recognised by its position (Rejection).
var standIn = []byte("GET / HTTP/1.1\r\nHost: rejected.lucid.invalid\r\nConnection: close\r\n\r\n")

// Conn checks every request on a downstream connection before net/http reads it. Reads
// return only bytes that passed: whole request heads that ParseHead accepted, and body
// bytes within the framing the head announced. A refused head is replaced by a stand-in
// request (see Rejection); broken body framing by bytes net/http's parser refuses.
//
// Read is called by net/http's connection goroutine (and its background reader, never
// at the same time); Rejection and BodyError by the handler.
type Conn struct {
	net.Conn
	lim Limits
	tls *tls.ConnectionState // of the connection under the bytes, for the handler

	st       state
	hd       Head                // the head being checked
	placed   []byte              // the head the last Read passed in place (nil: none), hd its check
	spans    [maxSpans]FieldSpan // placed's fields (Placed)
	inBuf    []byte              // the buffers under in and out, from bufs while a request is read
	outBuf   []byte
	inBox    *[]byte // what inBuf and outBuf go back to bufs in (kept: boxing costs an allocation)
	outBox   *[]byte
	remain   int64                     // stBody, stChunkData
	trailers int                       // trailer fields of the current message
	in       []byte                    // received, not yet checked
	out      []byte                    // checked, not yet read
	rerr     error                     // a read error to return once what came with it is checked
	drop     []byte                    // scratch buffer of stDiscard
	rd       func([]byte) (int, error) // what reads the connection during ReadWith (nil: Conn.Read)
	// headStarted is called when the first bytes of a head that did not come whole arrive
	// (OnHeadStart).
	headStarted func()

	heads     atomic.Int64 // heads handed on (the stand-in included)
	served    atomic.Int64 // requests the handler asked about (Next)
	mu        sync.Mutex
	rej       *Rejection // the refused head, stood in for by head number rejAt
	rejAt     int64
	bodyErr   string // why the body's framing broke ("" when it did not)
	upgradeAt int64  // the head that asked for an upgrade or a tunnel (0: none)
}

// NewConn wraps c. tlsState, when set, is the TLS state of the connection c's bytes come
// through (net/http does not see TLS through a wrapper; the proxy gives it to the request).
func NewConn(c net.Conn, lim Limits, tlsState *tls.ConnectionState) *Conn {
	g := &Conn{Conn: c, lim: lim, tls: tlsState}
	if tlsState != nil {
		g.st = stHead // no HTTP/2 prior knowledge inside TLS: ALPN says h2
	}
	return g
}

// TLS is the TLS state given to NewConn.
func (g *Conn) TLS() *tls.ConnectionState { return g.tls }

// ReadWith is Read with read in place of the connection's own Read, for a server that
// reads the socket its own way (sockio.Conn.TryRead, inside sockio.Conn.Hold). An error
// read returns with nothing read is returned as it is, and the check goes on at the next
// read.
func (g *Conn) ReadWith(p []byte, read func([]byte) (int, error)) (int, error) {
	g.rd = read
	n, err := g.Read(p)
	g.rd = nil
	return n, err
}

// AtHead reports whether the next bytes are a request head to check: no body, tunnel or
// rejected input is being passed on or dropped. Only the reader may ask.
func (g *Conn) AtHead() bool { return g.st == stHead }

// Passing reports whether Read passes the connection's bytes through as they come
// (HTTP/2 after its preface, an upgrade, a tunnel) and holds none of its own: reads made
// on the connection underneath would return the same bytes. Only the reader may ask.
func (g *Conn) Passing() bool { return g.st == stPass && !g.Buffered() }

// OnHeadStart has f called, on the reader's goroutine, when the first bytes of a request
// head arrive without the rest: Read keeps them and waits for the rest, so a server that
// times the head from its first byte (its header timeout, rather than the idle one) learns
// of it only so.
func (g *Conn) OnHeadStart(f func()) { g.headStarted = f }

// Buffered reports whether the next Read has something to return without reading the
// connection: checked bytes, received bytes not yet checked, or an error to report.
func (g *Conn) Buffered() bool { return len(g.out) > 0 || len(g.in) > 0 || g.rerr != nil }

// under reads the connection: ReadWith's read, or the connection's own.
func (g *Conn) under(p []byte) (int, error) {
	if g.rd != nil {
		return g.rd(p)
	}
	return g.Conn.Read(p)
}

// Read returns checked bytes. See Conn.
func (g *Conn) Read(p []byte) (int, error) {
	g.placed = nil // Placed answers for what this Read returns only
	for {
		if len(g.out) > 0 {
			n := copy(p, g.out)
			g.out = g.out[n:]
			if len(g.out) == 0 {
				g.out = g.outBuf[:0]
			}
			return n, nil
		}
		if len(g.in) > 0 {
			if n := g.direct(p); n > 0 {
				return n, nil
			}
			if g.step() {
				continue
			}
		}
		if g.rerr != nil {
			err := g.rerr
			g.rerr = nil
			return 0, err
		}
		g.release() // nothing pending: no buffer is held while the client is silent
		switch g.st {
		case stPass:
			return g.under(p)
		case stBody:
			n, err := g.under(p[:min(int64(len(p)), g.remain)])
			g.remain -= int64(n)
			if g.remain == 0 {
				g.st = stHead
			}
			return n, err
		case stDiscard:
			return g.discard()
		case stBroken:
			// No request follows a broken body: net/http's next read finds the end of the
			// stream and closes the connection.
			return 0, io.EOF
		}
		// Read into p, which net/http owns and reads after us anyway, then check.
		n, err := g.under(p)
		if g.st == stHead && len(g.in) == 0 && g.inPlace(p[:n]) { // nothing of an earlier head waits
			g.rerr = err // returned by the next read, as below
			return n, nil
		}
		if n > 0 && len(g.in) == 0 && (g.st == stHead || g.st == stStart) && g.headStarted != nil {
			g.headStarted() // a head has begun, and Read waits for its rest
		}
		g.appendIn(p[:n])
		if err != nil {
			if n == 0 {
				return 0, err
			}
			g.rerr = err
		}
		if len(g.in) > g.lim.HeaderBytes()+rawSlack && g.st == stHead {
			if end, rj := headEnd(g.in); end < 0 && rj == nil {
				g.refuse(tooLarge(g.in, g.lim))
			}
		}
	}
}

// direct hands on body or pass-through bytes already received, without copying them
// into out first.
func (g *Conn) direct(p []byte) int {
	var n int
	switch g.st {
	case stPass:
		n = copy(p, g.in)
	case stBody, stChunkData:
		n = copy(p, g.in[:min(int64(len(g.in)), g.remain)])
		g.remain -= int64(n)
		switch {
		case g.remain > 0:
		case g.st == stBody:
			g.st = stHead
		default:
			g.st = stChunkCRLF
		}
	default:
		return 0
	}
	g.consume(n)
	return n
}

// step checks what it can of in, moving it to out; false when more input is needed.
func (g *Conn) step() bool {
	switch g.st {
	case stStart:
		k := min(len(g.in), len(h2Preface))
		if !bytes.Equal(g.in[:k], h2Preface[:k]) {
			g.st = stHead
			return true
		}
		if k < len(h2Preface) {
			return false
		}
		g.st = stPass
		return true
	case stHead:
		return g.head()
	case stChunkSize, stTrailer:
		i := bytes.Index(g.in, []byte("\r\n"))
		if j := bytes.IndexByte(g.in, '\n'); j >= 0 && (i < 0 || j < i+1) {
			g.breakBody("a chunked-body line ends in LF without CR")
			return true
		}
		if i < 0 {
			switch {
			case g.st == stChunkSize && len(g.in) > maxChunkLine:
				g.breakBody("a chunk-size line longer than 4096 bytes")
				return true
			case g.st == stTrailer && len(g.in) > g.lim.HeaderBytes():
				g.breakBody("a trailer line longer than max_request_headers_kb")
				return true
			}
			return false
		}
		line := g.in[:i]
		if bytes.IndexByte(line, '\r') >= 0 {
			g.breakBody("a bare CR in a chunked-body line")
			return true
		}
		if g.st == stChunkSize {
			return g.chunkLine(line, i)
		}
		return g.trailerLine(line, i)
	case stChunkCRLF:
		if len(g.in) < 2 {
			return false
		}
		if g.in[0] != '\r' || g.in[1] != '\n' {
			g.breakBody("chunk data is not followed by CRLF (the chunk is longer than its size says)")
			return true
		}
		g.emit(2)
		g.st = stChunkSize
		return true
	case stDiscard, stBroken:
		g.in = g.inBuf[:0]
		return true
	}
	return false
}

func (g *Conn) chunkLine(line []byte, i int) bool {
	n, why := chunkSize(line)
	if why != "" {
		g.breakBody(why)
		return true
	}
	g.emit(i + 2)
	if n == 0 {
		g.st, g.trailers = stTrailer, 0
	} else {
		g.st, g.remain = stChunkData, n
	}
	return true
}

func (g *Conn) trailerLine(line []byte, i int) bool {
	if len(line) == 0 {
		g.emit(2)
		g.st = stHead
		return true
	}
	if why := trailerField(line); why != "" {
		g.breakBody(why)
		return true
	}
	if g.trailers++; g.trailers > g.lim.Headers() {
		g.breakBody("more than max_headers_count (" + itoa(g.lim.Headers()) + ") trailer fields")
		return true
	}
	g.emit(i + 2)
	return true
}

// head checks a request head once it has all arrived.
func (g *Conn) head() bool {
	// Empty lines before a request line are skipped (RFC 9112 §2.2).
	for len(g.in) >= 2 && g.in[0] == '\r' && g.in[1] == '\n' {
		g.consume(2)
	}
	if len(g.in) == 0 {
		return false
	}
	end, rj := headEnd(g.in)
	if rj == nil && end < 0 {
		rj = early(g.in)
	}
	if rj != nil {
		g.refuse(labelled(rj, g.in))
		return true
	}
	if end < 0 {
		return false
	}
	h := &g.hd
	rj = parseHead(g.in[:end], g.lim, h, true, nil)
	h.Method, h.Target, h.Proto = "", "", "" // borrowed from in, which changes next
	if rj != nil {
		g.refuse(rj)
		return true
	}
	lineEnd := LineEnd(g.in)
	g.appendOut(h.Line, g.in[lineEnd:end])
	g.consume(end)
	g.accepted(h)
	return true
}

// inPlace checks a read that is exactly one request head, as a keep-alive client's
// request without a body (or with its body still to come) usually arrives, where it
// landed: when the head passes unchanged it is handed on as it is, without a copy into in
// and back out. Anything else (a partial or refused head, bytes after it, a fragment cut
// from the target) is left to the general path, which parses it again.
func (g *Conn) inPlace(b []byte) bool {
	if len(b) < 4 || b[0] == '\r' || !bytes.HasSuffix(b, []byte("\r\n\r\n")) {
		return false
	}
	// No search for the end first: a head parseHead accepts ends at its first empty line
	// and has no other CR or LF (FuzzParseHead holds it to headEnd).
	h := &g.hd
	rj := parseHead(b, g.lim, h, true, &g.spans)
	h.Method, h.Target, h.Proto = "", "", "" // borrowed from b, the caller's
	if rj != nil || len(h.Line) != LineEnd(b) {
		return false
	}
	g.placed = b
	g.accepted(h)
	return true
}

// Placed is the check of head when head is the request head the last Read passed in
// place (the same bytes, where that Read put them, which the caller has not changed) and
// where each of its fields lies in it. A server reading heads from the Conn takes the
// head's layout from them (Head's SP1 and SP2, one span per field) instead of finding it
// again; Head's strings (Method, Target, Proto) are empty. nil for any other head, or one
// of more fields than a Conn notes: the caller parses it itself. Call it before the next
// Read, ordered after the Read that returned head (from the same goroutine, or one that
// waited for the reader to finish, as h1server's serve loop waits for its watcher).
func (g *Conn) Placed(head []byte) (*Head, []FieldSpan) {
	if len(head) == 0 || len(head) != len(g.placed) || &head[0] != &g.placed[0] || g.hd.Fields > len(g.spans) {
		return nil, nil
	}
	return &g.hd, g.spans[:g.hd.Fields]
}

// accepted moves on past a head that passed: to its body's framing, or out of HTTP/1.1.
func (g *Conn) accepted(h *Head) {
	g.heads.Add(1)
	switch {
	case h.Upgrade || h.Connect:
		g.mu.Lock()
		g.upgradeAt = g.heads.Load()
		g.mu.Unlock()
		g.st = stPass
	case h.Chunked:
		g.st = stChunkSize
	case h.ContentLength > 0:
		g.st, g.remain = stBody, h.ContentLength
	}
}

// early refuses an incomplete head whose start already cannot be a request (a method
// that is not a token, TLS or other bytes sent to a plaintext port, a request line
// without an HTTP version), so the client is answered at once instead of after the
// header timeout.
func early(b []byte) *Rejection {
	line, complete := b, false
	if i := bytes.Index(b, []byte("\r\n")); i >= 0 {
		line, complete = b[:i], true
	}
	if complete {
		var h Head
		return parseRequestLine(line, &h, false)
	}
	method := line
	if i := bytes.IndexByte(line, ' '); i >= 0 {
		method = line[:i]
	}
	for _, c := range method {
		if !isTokenByte(c) && c != '\r' {
			return reject(http.StatusBadRequest, DetailsCodecError, "the request does not start with a method (not HTTP/1.1?)")
		}
	}
	return nil
}

// emit moves the first n bytes of in to out.
func (g *Conn) emit(n int) {
	g.appendOut(g.in[:n])
	g.consume(n)
}

// consume drops the first n bytes of in.
func (g *Conn) consume(n int) {
	g.in = g.in[n:]
	if len(g.in) == 0 {
		g.in = g.inBuf[:0]
	}
}

// bufs holds the buffers of connections that are reading a request; a connection waiting
// for its client holds none.
var bufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// maxPooled is the largest buffer put back into bufs (a large head's is dropped).
const maxPooled = 64 << 10

// getBuf returns a buffer and the box it goes back to bufs in (putBuf).
func getBuf() ([]byte, *[]byte) {
	box := bufs.Get().(*[]byte)
	return (*box)[:0], box
}

func putBuf(b []byte, box *[]byte) {
	if cap(b) > 0 && cap(b) <= maxPooled {
		*box = b[:0]
		bufs.Put(box)
	}
}

// appendIn adds received bytes to in, moving what is left of in to the buffer's start
// when that makes room.
func (g *Conn) appendIn(b []byte) {
	if g.inBuf == nil {
		g.inBuf, g.inBox = getBuf()
		g.in = g.inBuf
	}
	if len(g.in)+len(b) > cap(g.in) && cap(g.in) < cap(g.inBuf) {
		g.in = g.inBuf[:copy(g.inBuf[:cap(g.inBuf)], g.in)]
	}
	g.in = append(g.in, b...)
	if cap(g.in) > cap(g.inBuf) { // a new, larger array
		g.inBuf = g.in[:0]
	}
}

// appendOut adds checked bytes to out (which read empties before anything is added).
func (g *Conn) appendOut(bs ...[]byte) {
	if g.outBuf == nil {
		g.outBuf, g.outBox = getBuf()
		g.out = g.outBuf
	}
	for _, b := range bs {
		g.out = append(g.out, b...)
	}
	if cap(g.out) > cap(g.outBuf) { // a new, larger array
		g.outBuf = g.out[:0]
	}
}

// release gives the buffers back when nothing is pending in them.
func (g *Conn) release() {
	if len(g.in) > 0 || len(g.out) > 0 {
		return
	}
	if g.inBox != nil {
		putBuf(g.inBuf, g.inBox)
	}
	if g.outBox != nil {
		putBuf(g.outBuf, g.outBox)
	}
	g.in, g.out, g.inBuf, g.outBuf, g.inBox, g.outBox = nil, nil, nil, nil, nil, nil
}

// refuse stands in for a refused head and stops reading requests.
func (g *Conn) refuse(rj *Rejection) {
	at := g.heads.Add(1)
	g.mu.Lock()
	g.rej, g.rejAt = rj, at
	g.mu.Unlock()
	g.appendOut(standIn)
	g.in = g.inBuf[:0]
	g.st = stDiscard
}

// breakBody ends a body whose framing broke: net/http is handed bytes its chunked reader
// refuses where it expects the next piece, so the handler's body read fails there.
func (g *Conn) breakBody(why string) {
	g.mu.Lock()
	g.bodyErr = why
	g.mu.Unlock()
	if g.st == stChunkCRLF {
		g.appendOut(poisonCRLF)
	} else {
		g.appendOut(poisonLine)
	}
	g.in = g.inBuf[:0]
	g.st = stBroken
}

// discard reads and drops what the client still sends after a rejection, until the
// connection fails or net/http interrupts the read (a deadline).
func (g *Conn) discard() (int, error) {
	if g.drop == nil {
		g.drop = make([]byte, 4096)
	}
	for {
		if _, err := g.under(g.drop); err != nil {
			return 0, err
		}
	}
}

// CloseWrite half-closes the connection underneath, so that net/http can let the client
// read the last answer before the connection closes (it lingers only on connections that
// can half-close).
func (g *Conn) CloseWrite() error {
	if cw, ok := g.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Next is called by the handler once per request, in order. It returns the rejection
// when this request is the stand-in for a refused head; and last when this request asked
// for an upgrade or a tunnel, after which the connection carries no checked request: unless
// the handler takes the connection over, it must close after this answer.
func (g *Conn) Next() (rj *Rejection, last bool) {
	n := g.served.Add(1)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.rej != nil && n == g.rejAt {
		return g.rej, false
	}
	return nil, g.upgradeAt != 0 && n == g.upgradeAt
}

// BodyError says why the current request's body framing broke ("" when it did not).
func (g *Conn) BodyError() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.bodyErr
}

// Upgraded reports whether a request asked for an upgrade or a tunnel, after which the
// connection's bytes are passed on unchecked.
func (g *Conn) Upgraded() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.upgradeAt != 0
}

// tooLarge is the rejection of a head that grew past the limit before it ended.
func tooLarge(b []byte, lim Limits) *Rejection {
	rj := reject(http.StatusRequestHeaderFieldsTooLarge, DetailsHeadersTooLarge, "the request head grew beyond max_request_headers_kb ("+
		itoa(lim.HeaderBytes()>>10)+" KiB) without ending")
	return labelled(rj, b)
}

// labelled adds what can be read of the request line to a rejection.
func labelled(rj *Rejection, b []byte) *Rejection {
	if rj.Method != "" {
		return rj
	}
	line := b
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		line = b[:i]
	}
	line = bytes.TrimRight(line, "\r")
	parts := bytes.SplitN(line, []byte(" "), 3)
	if len(parts) == 3 && ValidName(parts[0]) {
		rj.Method, rj.Target, rj.Proto = string(parts[0]), truncate(string(parts[1])), truncate(string(parts[2]))
	}
	return rj
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}
