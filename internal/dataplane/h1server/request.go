package h1server

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
	"github.com/lucid-mesh/lucid/internal/dataplane/requesturi"
	"github.com/lucid-mesh/lucid/internal/dataplane/strslab"

	"golang.org/x/net/http/httpguts"
)

// parse reads a complete head (request line, fields, empty line) into st's request (with
// st's context), with its body reader (nil: no body). The values are slices of room when
// it is large enough, and the URL is st's when the target is a plain path. A non-empty string says
// what is malformed. On the proxy's listeners http1 has checked the head already; the
// checks here keep the loop safe on its own. A head http1 checked where it lies (the
// usual keep-alive request, alone in its read) is not looked through again: its layout
// comes from the check (http1.Conn.Placed), and only what the check does not decide is
// checked here.
func (c *conn) parse(st *requestState, head []byte, room []string) (*http.Request, *body, string) {
	var hd *http1.Head
	var spans []http1.FieldSpan
	if c.check != nil {
		hd, spans = c.check.Placed(head)
	}
	var le, sp1, sp2 int
	if hd != nil {
		le, sp1, sp2 = len(hd.Line), int(hd.SP1), int(hd.SP2)
	} else {
		le = http1.LineEnd(head) // never -1: head ends with CRLF CRLF
		if le < 0 {
			return nil, nil, "malformed request head"
		}
		sp1 = bytes.IndexByte(head[:le], ' ')
		sp2 = bytes.LastIndexByte(head[:le], ' ')
		if sp1 <= 0 || sp2 <= sp1+1 {
			return nil, nil, "malformed request line"
		}
	}
	line := head[:le]
	var minor int
	switch string(line[sp2+1:]) {
	case "HTTP/1.1":
		minor = 1
	case "HTTP/1.0":
	default:
		return nil, nil, "unsupported HTTP version"
	}
	method := internMethod(line[:sp1])
	if hd == nil && !http1.ValidName(method) { // a token
		return nil, nil, "invalid method"
	}
	// Lines counted by their LF (a one-byte count is a vector scan): a bare LF is in a
	// line the checks below refuse.
	n := 0
	if hd != nil {
		n = hd.Fields
	} else {
		n = bytes.Count(head, []byte{'\n'}) - 2
	}
	// The target and the field values are strings of the head's lines. A line the
	// connection's last head had in the same place is the string made for it then; the
	// others are copied into the connection's arena (strslab.Recall): an allocation every
	// few requests at most, and little garbage when a client's requests differ in a few
	// fields. A head of more lines than the Recall keeps is copied whole into hs, in a
	// block shared with other heads (strslab). One array (room, usually) holds every
	// value's slice: no allocation per field.
	var hs, target string
	if n < strslab.RecallLines {
		target = c.recall.Line(0, line, len(head))[sp1+1 : sp2]
	} else {
		hs = strslab.String(head)
		target = hs[sp1+1 : sp2]
	}
	vals := room
	if n <= len(room) {
		vals = room[:n]
	} else {
		vals = make([]string, n)
	}
	var u *url.URL
	var err error
	if method == http.MethodConnect && !strings.HasPrefix(target, "/") {
		u, err = url.ParseRequestURI("http://" + target)
		if err == nil {
			u.Scheme = ""
		}
	} else {
		u, err = requesturi.Parse(target, &st.url)
	}
	if err != nil {
		return nil, nil, "invalid request target"
	}
	h := st.h // empty (reset)
	if h == nil {
		h = make(http.Header, len(vals))
		st.h = h
	}
	req := st.req.Blank(&st.ctx)
	req.Method = method
	req.URL = u
	req.Proto, req.ProtoMajor, req.ProtoMinor = protoName(minor), 1, minor
	req.Header = h
	req.RequestURI = target
	req.RemoteAddr = c.remote
	off := le + 2
	var seen http1.FieldSet
	var host string // Host goes to req.Host, not into the map (as net/http): framing
	hosts, fields := 0, 0
	for n = 0; n < len(vals); n++ {
		var sp http1.FieldSpan // head and hs share offsets
		if hd != nil {         // checked: a token name, a valid value, lines ending in CRLF
			sp = spans[n]
		} else {
			i := bytes.IndexByte(head[off:], '\n')
			if i < 1 || head[off+i-1] != '\r' {
				return nil, nil, "invalid header field" // a bare LF
			}
			if i--; i == 0 {
				break // the empty line
			}
			f := head[off : off+i]
			ci := bytes.IndexByte(f, ':')
			if ci <= 0 {
				return nil, nil, "malformed header field"
			}
			token, canonical := http1.NameForm(f[:ci])
			vs, ve := http1.OWSBounds(head, off+ci+1, off+i)
			if !token || !http1.ValidValue(head[vs:ve]) {
				return nil, nil, "invalid header field"
			}
			sp = http1.FieldSpan{Start: int32(off), Colon: int32(off + ci), ValueStart: int32(vs), ValueEnd: int32(ve), Canonical: canonical}
			off += i + 2
		}
		var k, v string
		if hs == "" {
			l := c.recall.Line(n+1, sp.Line(head), len(head))
			k, v = sp.KeyIn(l), sp.ValueIn(l)
		} else {
			k, v = sp.Key(hs), sp.Value(hs)
		}
		vals[n] = v
		if n < len(st.recv) {
			st.recv[n] = http1.ReceivedField{Key: k, Value: v, Slot: &vals[n]}
		}
		if f := http1.FieldOf(k); f != 0 {
			seen |= f
			if f == http1.FieldHost {
				if hosts++; hosts == 1 {
					host = v
				}
				continue
			}
		}
		// Set without looking first: a name seldom repeats, and when one did the map has
		// fewer keys than the head has fields (below).
		h[k] = vals[n : n+1 : n+1]
		fields++
	}
	if len(h) < fields {
		gatherRepeats(h, head, hs, le+2, vals[:n], st.recv[:])
	} else if n <= len(st.recv) {
		st.nrecv = uint8(n)
	}
	st.fields = seen
	return c.framing(req, seen, host, hosts)
}

// gatherRepeats rebuilds h when a name came more than once in head (parse kept only each
// name's last value): every value under its name, in the order received, Host left out.
// vals are the values of the field lines from off on, which parse has checked; recv
// holds the keys of the first of them, hs (when parse copied the head whole) the others'.
func gatherRepeats(h http.Header, head []byte, hs string, off int, vals []string, recv []http1.ReceivedField) {
	clear(h)
	for n := range vals {
		i := bytes.IndexByte(head[off:], '\n') - 1 // the CR
		var k string
		if n < len(recv) {
			k = recv[n].Key
		} else {
			name := head[off : off+bytes.IndexByte(head[off:off+i], ':')]
			k = hs[off : off+len(name)]
			if _, canonical := http1.NameForm(name); !canonical {
				k = http1.CanonicalKey(name)
			}
		}
		off += i + 2
		if k == "Host" {
			continue
		}
		if prev, ok := h[k]; ok {
			h[k] = append(prev, vals[n])
		} else {
			h[k] = vals[n : n+1 : n+1]
		}
	}
}

var crlf = []byte("\r\n")

func protoName(minor int) string {
	if minor == 0 {
		return "HTTP/1.0"
	}
	return "HTTP/1.1"
}

// framing applies the head's fields to the request as net/http does: Host (hosts of
// them, the first host; parse left it out of the map), Connection, Content-Length,
// Transfer-Encoding, Trailer; and makes the body reader.
func (c *conn) framing(req *http.Request, seen http1.FieldSet, host string, hosts int) (*http.Request, *body, string) {
	h := req.Header
	req.Host = req.URL.Host
	if hosts > 0 {
		if hosts > 1 {
			return nil, nil, "more than one Host header"
		}
		if req.Host == "" {
			req.Host = host
		}
	} else if req.ProtoMinor == 1 && req.Host == "" {
		return nil, nil, "missing Host header"
	}
	req.Close = req.ProtoMinor == 0 // shouldClose without a Connection field
	if seen&http1.FieldConnection != 0 {
		req.Close = shouldClose(req.ProtoMinor, h)
	}
	chunked := false
	if te := seen.Lookup(h, "Transfer-Encoding", http1.FieldTransferEncoding); te != nil {
		if len(te) != 1 || !http1.EqualFoldASCII(te[0], "chunked") || req.ProtoMinor == 0 {
			return nil, nil, "unsupported Transfer-Encoding"
		}
		if _, hasCL := h["Content-Length"]; hasCL {
			return nil, nil, "both Content-Length and Transfer-Encoding"
		}
		chunked = true
		delete(h, "Transfer-Encoding")
		req.TransferEncoding = chunkedTE
	}
	var cl int64
	if v := seen.Lookup(h, "Content-Length", http1.FieldContentLength); v != nil {
		for i, s := range v {
			if i > 0 && s != v[0] {
				return nil, nil, "conflicting Content-Length"
			}
		}
		n, err := strconv.ParseUint(v[0], 10, 63)
		if err != nil {
			return nil, nil, "invalid Content-Length"
		}
		cl = int64(n)
		if len(v) > 1 {
			h["Content-Length"] = v[:1]
		}
	}
	if tr := seen.Lookup(h, "Trailer", http1.FieldTrailer); tr != nil && chunked {
		req.Trailer = http.Header{}
		for _, v := range tr {
			for k := range strings.SplitSeq(v, ",") {
				k = http.CanonicalHeaderKey(strings.TrimSpace(k))
				switch k {
				case "Transfer-Encoding", "Trailer", "Content-Length":
					return nil, nil, "forbidden trailer " + k
				case "":
					continue
				}
				req.Trailer[k] = nil
			}
		}
		delete(h, "Trailer")
	}
	switch {
	case chunked:
		req.ContentLength = -1
	case cl > 0:
		req.ContentLength = cl
	default:
		req.Body = http.NoBody
		return req, nil, ""
	}
	b := &body{c: c, req: req, chunked: chunked, remain: cl}
	if req.ProtoMinor == 1 && hasToken(seen.Lookup(h, "Expect", http1.FieldExpect), "100-continue") {
		b.expect = true
	}
	req.Body = b
	return req, b, ""
}

var chunkedTE = []string{"chunked"}

// shouldClose is net/http's rule: HTTP/1.0 closes unless it asks for keep-alive,
// HTTP/1.1 when it says close (the Connection header is then dropped).
func shouldClose(minor int, h http.Header) bool {
	if minor == 0 {
		return !hasToken(h["Connection"], "keep-alive")
	}
	if hasToken(h["Connection"], "close") {
		delete(h, "Connection")
		return true
	}
	return false
}

func hasToken(vs []string, tok string) bool {
	for _, v := range vs {
		if httpguts.HeaderValuesContainsToken([]string{v}, tok) {
			return true
		}
	}
	return false
}

// methods are the usual methods, returned without allocating.
var methods = []string{"GET", "POST", "PUT", "HEAD", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"}

func internMethod(b []byte) string {
	for _, m := range methods {
		if string(b) == m {
			return m
		}
	}
	return string(b)
}

// body reads a request's body off the connection: Content-Length bytes, or chunks and
// trailers. Reads may come from another goroutine than the handler's; mu orders them
// with the loop's drain after the handler.
type body struct {
	c   *conn
	w   *response
	req *http.Request

	mu           sync.Mutex
	chunked      bool
	remain       int64 // Content-Length: bytes left; chunked: bytes left of the chunk
	inChunk      bool  // chunked: remain counts a chunk's data
	eof          bool
	err          error
	closed       bool
	expect       bool        // Expect: 100-continue
	sentContinue atomic.Bool // the 100 Continue went out (or the handler sent one)
}

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	return b.read(p)
}

func (b *body) read(p []byte) (int, error) {
	switch {
	case b.err != nil:
		return 0, b.err
	case b.eof:
		return 0, io.EOF
	case len(p) == 0:
		return 0, nil
	}
	if b.expect && !b.sentContinue.Load() {
		b.w.sendContinue()
	}
	if !b.chunked {
		n := b.raw(p[:min(int64(len(p)), b.remain)])
		b.remain -= int64(n)
		if b.remain == 0 {
			b.eof = true
			b.c.bodyRead()
			return n, io.EOF
		}
		if n == 0 {
			return 0, b.fail()
		}
		return n, nil
	}
	if !b.inChunk {
		size, ok := b.chunkSize()
		if !ok {
			return 0, b.err
		}
		if size == 0 {
			if !b.trailers() {
				return 0, b.err
			}
			b.eof = true
			b.c.bodyRead()
			return 0, io.EOF
		}
		b.remain, b.inChunk = size, true
	}
	n := b.raw(p[:min(int64(len(p)), b.remain)])
	if n == 0 {
		return 0, b.fail()
	}
	b.remain -= int64(n)
	if b.remain == 0 {
		b.inChunk = false
		b.chunkEnd()
	}
	return n, nil
}

// chunkEnd reads the CRLF after a chunk's data; anything else breaks the body (the error
// comes with the next read).
func (b *body) chunkEnd() {
	c := b.c
	for c.w-c.r < 2 {
		if c.rerr != nil {
			_ = b.fail()
			return
		}
		c.fill()
	}
	if c.buf[c.r] != '\r' || c.buf[c.r+1] != '\n' {
		b.err = errMalformedChunk
		return
	}
	c.r += 2
}

var errMalformedChunk = errors.New("h1server: malformed chunked encoding")

// fail records why the body ended early.
func (b *body) fail() error {
	err := b.c.rerr
	if err == nil || err == io.EOF { //nolint:errorlint // a read's own io.EOF
		err = io.ErrUnexpectedEOF
	}
	b.err = err
	return err
}

// raw reads body bytes: buffered ones first, else from the connection (into p directly
// when p is large, sparing a copy).
func (b *body) raw(p []byte) int {
	c := b.c
	if c.r == c.w {
		if c.rerr != nil {
			return 0
		}
		if len(p) >= 2048 {
			n, err := c.rwc.Read(p)
			if err != nil {
				c.rerr = err
			}
			return n
		}
		c.fill()
	}
	n := copy(p, c.buf[c.r:c.w])
	c.r += n
	return n
}

// line returns the next CRLF-terminated line of a chunked body, without the CRLF.
func (b *body) line() ([]byte, bool) {
	c := b.c
	for {
		if i := bytes.Index(c.buf[c.r:c.w], crlf); i >= 0 {
			l := c.buf[c.r : c.r+i]
			c.r += i + 2
			return l, true
		}
		if c.w-c.r > 4096+c.maxHeader() || c.rerr != nil {
			if c.rerr != nil {
				_ = b.fail()
			} else {
				b.err = errMalformedChunk
			}
			return nil, false
		}
		c.fill()
	}
}

func (b *body) chunkSize() (int64, bool) {
	l, ok := b.line()
	if !ok {
		return 0, false
	}
	if i := bytes.IndexByte(l, ';'); i >= 0 {
		l = l[:i]
	}
	if len(l) == 0 || len(l) > 16 {
		b.err = errMalformedChunk
		return 0, false
	}
	n, err := strconv.ParseUint(string(l), 16, 63)
	if err != nil {
		b.err = errMalformedChunk
		return 0, false
	}
	return int64(n), true
}

// trailers reads the trailer section after the last chunk into the request's Trailer.
func (b *body) trailers() bool {
	for {
		l, ok := b.line()
		if !ok {
			return false
		}
		if len(l) == 0 {
			return true
		}
		colon := bytes.IndexByte(l, ':')
		if colon <= 0 || !http1.ValidName(l[:colon]) {
			b.err = errMalformedChunk
			return false
		}
		if b.req.Trailer == nil {
			b.req.Trailer = http.Header{}
		}
		k := http1.CanonicalKey(l[:colon])
		b.req.Trailer[k] = append(b.req.Trailer[k], string(http1.TrimOWS(l[colon+1:])))
	}
}

func (b *body) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return nil
}

// close ends the body for good (after a panic).
func (b *body) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
}

// drain reads what the handler left of the body, up to maxDrain, so the next request can
// be read; false when the connection must close instead. Later reads fail.
func (b *body) drain() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.eof {
		return true
	}
	if b.err != nil || b.expect && !b.sentContinue.Load() {
		return false // the client may not send a body it was not asked for
	}
	if !b.chunked && b.remain > maxDrain {
		return false
	}
	var scratch [2048]byte
	for total := 0; total <= maxDrain; {
		n, err := b.read(scratch[:])
		total += n
		if err == io.EOF { //nolint:errorlint // read returns io.EOF itself
			return true
		}
		if err != nil {
			return false
		}
	}
	return false
}
