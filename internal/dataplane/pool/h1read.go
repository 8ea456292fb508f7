package pool

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"strings"
	"sync"

	"github.com/lucid-mesh/lucid/internal/dataplane/bufpool"
	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
	"github.com/lucid-mesh/lucid/internal/dataplane/strslab"
)

// Reading an upstream response head without net/http's allocations per field.
//
// Most answers have the same plain shape: HTTP/1.1, a final status with a body, a
// Content-Length, field lines that need no repair. Such a head, once it is all in the
// connection's read buffer, is read here into one string (every value and most names are
// slices of it), one map and one array of values. Anything else (1xx, 204, 304, an answer
// to HEAD, chunked or close-delimited bodies, a Connection field other than the
// "keep-alive" nginx and many servers send on every answer, Trailer or Pragma fields, two
// Content-Lengths, obsolete line folding, a byte net/http would refuse, a head not yet all
// received) is left unread for http.ReadResponse, so what net/http decides about it stays
// as it was.

// plainResp is a plain response with its body reader and the values of its fields, in
// one allocation (they live as long as one another), and its header map. Its memory
// serves a later response once Recycle says nothing reaches it.
type plainResp struct {
	resp http.Response
	body h1Body
	vals [8]string
	slot [1]string   // ValueSlot's
	h    http.Header // resp.Header; kept, emptied, when the memory is recycled
}

// ValueSlot is a one-value slice that lives, and is recycled, with the answer: for a
// field the proxy adds to the answer's header map once it adopted it (forward's
// x-envoy-upstream-service-time), without an allocation.
func (pr *plainResp) ValueSlot() []string { return pr.slot[:1:1] }

// plainResps holds the memory of plain responses that nothing reaches any more.
var plainResps = sync.Pool{New: func() any { return new(plainResp) }}

// Recycle gives pr's memory, header map included, to a later response. The caller
// promises that the body was closed and that nothing holds the response or its header
// map any more: not the caller, and not whoever it gave the map to (a server writing it
// as its response's head). Called once at most.
func (pr *plainResp) Recycle() {
	*pr = plainResp{h: bufpool.EmptyHeader(pr.h)}
	plainResps.Put(pr)
}

// ValueSlotter is a Recycler's answer that keeps a spare one-value slice with its memory
// (ValueSlot), for a field the caller adds to the answer's header map without an
// allocation: the pool's plain answers and its HTTP/2 client's.
type ValueSlotter interface{ ValueSlot() []string }

// Recycler returns what recycles resp's memory (Recycle) when the pool read resp on its
// HTTP/1.1 plain path (h1read.go) or with its own HTTP/2 client; nil for any other
// response, which the GC collects as usual. The caller recycles only once the body is
// closed and nothing holds resp or its header map.
func Recycler(resp *http.Response) interface{ Recycle() } {
	switch b := resp.Body.(type) {
	case *h1Body:
		if b.pr != nil && &b.pr.resp == resp {
			return b.pr
		}
	case *streamBody:
		if b.resp == resp {
			return b
		}
	}
	return nil
}

// plainResponse reads a plain response head (see above) for req from c.br. It returns nil
// with nothing consumed when the head is not plain or not all buffered yet, and the read
// error (as http.ReadResponse reports it) when the connection failed before any byte of
// the answer. pr.resp.ContentLength is the body's length (a Content-Length of 0 gets
// http.NoBody): the body is the next so many bytes of c.br, for pr.body to read.
func (c *h1Conn) plainResponse(req *http.Request) (pr *plainResp, err error) {
	if _, err := c.br.Peek(1); err != nil { // wait for the answer, as ReadResponse would
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if req.Method == http.MethodHead {
		return nil, nil
	}
	buf, _ := c.br.Peek(c.br.Buffered())
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 {
		return nil, nil
	}
	head := buf[:end+2] // the status line and the field lines, each with its CRLF
	pr = parsePlainHead(head, req)
	if pr == nil {
		return nil, nil
	}
	_, _ = c.br.Discard(end + 4)
	return pr, nil
}

// parsePlainHead parses head (the status line and field lines, each ending in CRLF, the
// empty line excluded) when it is plain; nil otherwise.
func parsePlainHead(head []byte, req *http.Request) *plainResp {
	const proto = "HTTP/1.1 "
	if !bytes.HasPrefix(head, []byte(proto)) {
		return nil
	}
	le := bytes.Index(head, []byte("\r\n"))
	line := head[len(proto):le]
	if len(line) < 3 || len(line) > 3 && line[3] != ' ' {
		return nil
	}
	code := 0
	for _, d := range line[:3] {
		if d < '0' || d > '9' {
			return nil
		}
		code = code*10 + int(d-'0')
	}
	if code < 200 || code > 599 || code == http.StatusNoContent || code == http.StatusNotModified {
		return nil
	}
	for _, b := range line {
		if !validValueByte(b) {
			return nil
		}
	}
	// One LF per line: a bare LF (not after CR) is in some line, which its check refuses.
	fields := bytes.Count(head, []byte("\n")) - 1
	// The one string: values, the status and canonical names are slices of it. It shares
	// a block with other heads (strslab): no allocation per answer.
	hs := strslab.String(head)
	pr := plainResps.Get().(*plainResp)
	vals := pr.vals[:]
	if fields > len(vals) {
		vals = make([]string, fields)
	}
	h := pr.h
	if h == nil {
		h = make(http.Header, fields)
		pr.h = h
	}
	length := int64(-1)
	off := le + 2
	for i := 0; i < fields; i++ {
		e := bytes.Index(head[off:], []byte("\r\n"))
		if e < 0 {
			return pr.drop()
		}
		e += off
		f := head[off:e]
		colon := bytes.IndexByte(f, ':')
		if colon <= 0 {
			return pr.drop()
		}
		token, canonical := http1.NameForm(f[:colon]) // a token, as textproto accepts in a name
		if !token {
			return pr.drop()
		}
		vs, ve := off+colon+1, e
		for vs < ve && (hs[vs] == ' ' || hs[vs] == '\t') {
			vs++
		}
		for ve > vs && (hs[ve-1] == ' ' || hs[ve-1] == '\t') {
			ve--
		}
		for j := vs; j < ve; j++ {
			if !validValueByte(hs[j]) {
				return pr.drop()
			}
		}
		key := hs[off : off+colon] // the name as received when canonical already (the usual)
		if !canonical {
			key = textproto.CanonicalMIMEHeaderKey(key)
		}
		v := hs[vs:ve]
		off = e + 2
		switch key {
		case "Content-Length":
			if length >= 0 {
				return pr.drop()
			}
			n, ok := http1.ParseLength(head[vs:ve]) // head and hs share offsets
			if !ok {
				return pr.drop()
			}
			length = n
		case "Connection":
			// "keep-alive" changes nothing in HTTP/1.1, and net/http keeps the field as
			// it is; any other option ("close", a field to remove) goes to net/http.
			if !strings.EqualFold(v, "keep-alive") {
				return pr.drop()
			}
		case "Transfer-Encoding", "Trailer", "Pragma":
			return pr.drop()
		}
		if prev, ok := h[key]; ok {
			h[key] = append(prev, v)
			continue
		}
		vals[i] = v
		h[key] = vals[i : i+1 : i+1]
	}
	if length < 0 {
		return pr.drop() // a body delimited by the connection's end
	}
	pr.resp = http.Response{
		Status:        hs[len(proto):le],
		StatusCode:    code,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		ContentLength: length,
		Request:       req,
	}
	if length == 0 {
		pr.resp.Body = http.NoBody
	}
	return pr
}

// drop recycles pr, which no response uses (its head was not plain after all): nil.
func (pr *plainResp) drop() *plainResp {
	pr.Recycle()
	return nil
}

// validValueByte: a byte textproto accepts in a value (visible ASCII, SP, HTAB, obs-text).
func validValueByte(b byte) bool {
	return b == '\t' || b >= ' ' && b != 0x7f
}
