package pool

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"sync"
	"unsafe"

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
// as it was. A caller that only passes the fields on as received asks for them as a list
// (FieldsAsker): then the map is not built unless asked for (FillHeader). A plain
// answer's "Connection: keep-alive" (HTTP/1.1's default, which says nothing but that the
// pool's connection stays open) is not among its fields: a proxy would only remove it.

// plainResp is a plain response with its body reader and the values of its fields, in
// one allocation (they live as long as one another), and its header map. Its memory
// serves a later response once Recycle says nothing reaches it.
type plainResp struct {
	plainMem
	// spans are parsePlainHead's notes on where the fields are: no pointers, so Recycle
	// leaves them as they are.
	spans [16]http1.FieldSpan
}

// plainMem is the part of a plainResp that Recycle clears, all at once: a block of wide
// stores, which costs less than a loop over the fields an answer used once it had a few.
type plainMem struct {
	resp http.Response
	body h1Body
	vals [8]string
	slot [1]string   // ValueSlot's
	h    http.Header // resp.Header; kept, emptied, when the memory is recycled
	// received are the fields as parsed into h, in the order received (ReceivedFields),
	// when there were at most 16 and no name repeated; empty otherwise.
	received []http1.ReceivedField
	// deferred: h is empty until FillHeader puts received there (FieldsAsker).
	deferred bool
	recvArr  [16]http1.ReceivedField
	hop      []string // HopFields
	hopArr   [4]string
}

// ReceivedFields are the answer's fields as the pool parsed them into its header map, in
// the order received: a server writing the map as its answer's head (h1server) writes
// those still as they were in that order, unchecked, and the others after them. Empty
// when the head had more than 16 fields or a name twice (Set-Cookie, say): such an answer
// is written sorted by name, as any answer net/http's reader read.
func (pr *plainResp) ReceivedFields() []http1.ReceivedField { return pr.received }

// HopFields are the keys of the answer's hop-by-hop fields (http1.HopByHop), all of them
// (a key may be listed twice), as parsed into its header map: a proxy removes them with a
// delete each instead of a walk of the map. Most answers have none (their "Connection:
// keep-alive" is not among the fields at all); Node's servers send Keep-Alive.
func (pr *plainResp) HopFields() []string { return pr.hop }

// FillHeader puts the fields of an answer the caller asked for as a list (FieldsAsker)
// into its header map, as the pool would have; it does nothing for any other response.
func FillHeader(resp *http.Response) {
	if pr := deferredOf(resp); pr != nil {
		pr.deferred = false
		for i := range pr.received {
			f := &pr.received[i]
			pr.h[f.Key] = unsafe.Slice(f.Slot, 1) //nolint:gosec // the value's own one-value slice among the answer's values, as parsed
		}
	}
}

// FieldValue is the first value of the answer's field k (canonical), "" when it has none:
// from its list while its header map waits (FieldsAsker), else from the map.
func FieldValue(resp *http.Response, k string) string {
	if pr := deferredOf(resp); pr != nil {
		for i := range pr.received {
			if pr.received[i].Key == k {
				return pr.received[i].Value
			}
		}
		return ""
	}
	return http1.Value(resp.Header, k)
}

// HeaderDeferred says whether resp's header map still waits for its fields (FieldsAsker).
func HeaderDeferred(resp *http.Response) bool { return deferredOf(resp) != nil }

// deferredOf is resp's memory when its header map waits for FillHeader; nil otherwise.
func deferredOf(resp *http.Response) *plainResp {
	if b, ok := resp.Body.(*h1Body); ok && b.pr != nil && &b.pr.resp == resp && b.pr.deferred {
		return b.pr
	}
	return nil
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
	pr.plainMem = plainMem{h: bufpool.EmptyHeader(pr.h)}
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
	pr, n := parsePlainHead(buf, req, c.fieldsOnly, &c.recall)
	if pr == nil {
		return nil, nil
	}
	_, _ = c.br.Discard(n)
	return pr, nil
}

// parsePlainHead parses the head at the start of buf (the status line and the field
// lines, each ending in CRLF, then an empty line) when it is plain and all there, in one
// pass that reads each line once (h1scan.go), checks it and notes where its field is; then
// makes the lines' strings (copies of those the connection's last head did not have) and
// builds the map from the notes. It returns the response and the
// head's length, empty line included; nil otherwise, with nothing kept. With fieldsOnly an
// answer with a body and at most 16 fields, no name twice, gets no map yet (FieldsAsker).
// rc holds the strings of the connection's last plain head, which a line of the same bytes
// in the same place reuses.
func parsePlainHead(buf []byte, req *http.Request, fieldsOnly bool, rc *strslab.Recall) (*plainResp, int) {
	const proto = "HTTP/1.1 "
	if !bytes.HasPrefix(buf, []byte(proto)) {
		return nil, 0
	}
	le := http1.ValueEnd(buf, len(proto)) // the status line: a value's bytes
	if le < 0 {
		return nil, 0
	}
	line := buf[len(proto):le]
	if len(line) < 3 || len(line) > 3 && line[3] != ' ' {
		return nil, 0
	}
	code := 0
	for _, d := range line[:3] {
		if d < '0' || d > '9' {
			return nil, 0
		}
		code = code*10 + int(d-'0')
	}
	if code < 200 || code > 599 || code == http.StatusNoContent || code == http.StatusNotModified {
		return nil, 0
	}
	// The notes go into the memory the answer will have (no array zeroed on the stack);
	// it goes back at once when the head is not plain. They hold no pointer: nothing to
	// clear when it does.
	pr := plainResps.Get().(*plainResp)
	spans, length, end := scanFields(buf, le+2, pr.spans[:0])
	if end < 0 {
		plainResps.Put(pr)
		return nil, 0
	}
	// The status, the values and the canonical names are strings of the head's lines. A
	// line the connection's last answer had in the same place is the string made for it
	// then: a server answering alike repeats most of its lines (Server, Content-Type, Date
	// within its second). The others are copied into the connection's arena
	// (strslab.Recall). A head of more lines than the Recall keeps is copied whole into hs,
	// in a block shared with other heads (strslab).
	var hs, status string
	if len(spans) < strslab.RecallLines {
		status = rc.Line(0, buf[len(proto):le], end)
	} else {
		hs = strslab.String(buf[:end])
		status = hs[len(proto):le]
	}
	vals := pr.vals[:]
	if len(spans) > len(vals) {
		vals = make([]string, len(spans))
	}
	h := pr.h
	if h == nil {
		h = make(http.Header, len(spans))
		pr.h = h
	}
	// The map waits when the caller asked for the list only and the list is all of it:
	// every field listed, no name twice (compared below, before the map would tell).
	deferred := fieldsOnly && length > 0 && len(spans) <= len(pr.recvArr)
	// Set without looking first: a name seldom repeats, and when one did the map has fewer
	// keys than the head has fields, and is built again with every value in order.
	vals = vals[:len(spans)]
	rf, hop := pr.recvArr[:min(len(spans), len(pr.recvArr))], pr.hopArr[:0]
	for i := range spans {
		sp := &spans[i]
		var k, v string
		if hs == "" {
			l := rc.Line(i+1, sp.Line(buf), end)
			k, v = sp.KeyIn(l), sp.ValueIn(l)
		} else {
			k, v = sp.Key(hs), sp.Value(hs)
		}
		vals[i] = v
		if !deferred {
			h[k] = vals[i : i+1 : i+1]
		}
		if i < len(rf) {
			rf[i] = http1.ReceivedField{Key: k, Value: v, Slot: &vals[i]}
		}
		if http1.HopByHop(k) {
			hop = append(hop, k)
		}
	}
	pr.hop = hop
	// A hop-by-hop field is read here (the connection's Keep-Alive) and deleted by a proxy:
	// such an answer gets its map now, as one with a name twice.
	if deferred && (len(hop) > 0 || repeats(rf)) {
		deferred = false
		for i := range rf {
			h[rf[i].Key] = vals[i : i+1 : i+1]
		}
	}
	pr.deferred = deferred
	if len(spans) <= len(pr.recvArr) && (deferred || len(h) == len(spans)) {
		pr.received = rf
	}
	if !deferred && len(h) < len(spans) {
		clear(h)
		for i := range spans {
			var k string
			if hs == "" { // at most len(rf) fields: rf has every key
				k = rf[i].Key
			} else {
				k = spans[i].Key(hs)
			}
			if len(h[k]) > 0 {
				h[k] = append(h[k], vals[i])
			} else {
				h[k] = vals[i : i+1 : i+1]
			}
		}
	}
	pr.resp = http.Response{
		Status:        status,
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
	return pr, end
}

// repeats says whether a name comes twice among fs (a few fields: each pair compared).
func repeats(fs []http1.ReceivedField) bool {
	for i := 1; i < len(fs); i++ {
		for j := range i {
			if fs[i].Key == fs[j].Key {
				return true
			}
		}
	}
	return false
}
