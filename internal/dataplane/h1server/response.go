package h1server

import (
	"bufio"
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/net/http/httpguts"

	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
)

// response is the http.ResponseWriter of one request. The head is composed when it must
// go out (the handler flushes, the body outgrows outMax, or the handler returns), so a
// small answer is written once, head and body together, with its Content-Length.
// Methods are called by the handler's goroutine; wmu orders them with a 100 Continue.
type response struct {
	c      *conn
	req    *http.Request
	header http.Header
	body   *body

	status      int
	wroteHeader bool  // the status is decided
	headSent    bool  // the head has been written (or is in out, ahead of body bytes)
	cl          int64 // Content-Length announced by the handler (-1: none)
	written     int64 // body bytes the handler wrote
	chunked     bool
	closeAfter  bool
	http10      bool
	head        bool // a HEAD request: no body is sent
	hijacked    bool
	released    bool                   // ReleaseRequest: the request's memory may serve the next one
	fields      http1.FieldSet         // RequestFields
	recv        []http1.ReceivedField  // ReceivedRequest
	owner       interface{ Recycle() } // what an adopted header map or adopted fields belong to
	err         error                  // the connection failed while writing

	// AdoptFields: the head's fields are c.recv, all of them, then extra; header holds only
	// what the handler sets after (it replaces an adopted field of the same name).
	adopted   bool
	adoptedCL int64 // the adopted Content-Length
	hasDate   bool  // an adopted field is Date
	extra     [3]extraField
	nExtra    uint8
}

// extraField is a field AddField adds to adopted ones; value is a one-value slice of its
// own, to be written as a header map's values are.
type extraField struct {
	name  string
	value [1]string
	clean bool // AddCleanField's: written as it is
}

var (
	_ http.ResponseWriter = (*response)(nil)
	_ http.Flusher        = (*response)(nil)
	_ http.Hijacker       = (*response)(nil)
)

func (w *response) Header() http.Header { return w.header }

// ReleaseRequest tells the server that the handler, and whatever it gave the request to,
// will hold nothing of the request (its header map, URL, context) once the handler has
// returned: the connection's next request may then reuse its memory. A proxy whose
// request state is reusable says so (forward); a handler that does not call it keeps its
// request to itself.
func (w *response) ReleaseRequest() { w.released = true }

// RequestFields says which of the names http1.FieldOf knows the request's head had, as
// parsed: a handler that has not added any of them to the request's header map looks up
// only those it had (forward's per-request lookups). A name deleted since may still be
// in the set.
func (w *response) RequestFields() http1.FieldSet { return w.fields }

// ReceivedRequest is the request's fields as parsed into its header map, in the order
// received, Host among them (it is req.Host, not in the map), and those the body's
// framing may take out of the map (Transfer-Encoding, Trailer, Connection: close): a
// proxy writing the fields on
// can write them in that order, without walking the map, when the map still holds each as
// received (http1.ReceivedField.Received) and nothing else. Empty when the head had more
// than 16 fields or a name twice.
func (w *response) ReceivedRequest() []http1.ReceivedField { return w.recv }

// AdoptHeader makes h the response's header map, in place of copying h's fields into
// it, when nothing has been set or written yet (false otherwise). A proxy passing an
// upstream response's fields on uses it; h is the response's from then on (the handler
// must not use it for anything else). owner, when not nil, is what h's memory belongs
// to: once the answer is written, and if the handler released its request
// (ReleaseRequest), the server calls owner.Recycle, and h may then serve another
// response.
func (w *response) AdoptHeader(h http.Header, owner interface{ Recycle() }) bool {
	if w.wroteHeader || w.hijacked || len(w.header) > 0 || h == nil {
		return false
	}
	w.header, w.owner = h, owner
	return true
}

// AdoptFields makes fields, an upstream answer's fields as received (see
// http1.ReceivedField: canonical names, checked when they were read), the response's
// fields, written first in their order, without a header map; owner is what their memory
// belongs to, recycled as AdoptHeader's. It is for an answer whose framing is its one
// Content-Length. It returns false, and adopts nothing, when a field is
// Transfer-Encoding, Trailer or Connection; when Content-Length is missing, repeated or
// not 1 to 18 digits (http1.ParseLength, as the pool reads it); when there are more than
// 16 fields; or when anything has been set or written. The handler adds fields with
// AddField; a field it sets in Header() after this replaces the adopted ones of that
// name.
func (w *response) AdoptFields(fields []http1.ReceivedField, owner interface{ Recycle() }) bool {
	if w.wroteHeader || w.hijacked || w.adopted || len(w.header) > 0 || len(fields) == 0 || len(fields) > 16 {
		return false
	}
	cl, date := int64(-1), false
	for i := range fields {
		switch fields[i].Key {
		case "Content-Length":
			n, ok := http1.ParseLength(fields[i].Value)
			if !ok || cl >= 0 {
				return false
			}
			cl = n
		case "Transfer-Encoding", "Trailer", "Connection":
			return false
		case "Date":
			date = true
		}
	}
	if cl < 0 {
		return false
	}
	w.c.recv, w.c.recvBits = fields, uint16(1<<len(fields)-1) // 16 fields: 0xffff
	w.adopted, w.adoptedCL, w.hasDate, w.owner = true, cl, date, owner
	return true
}

// AddField adds the field name: value to the fields adopted with AdoptFields (a field the
// proxy adds to an answer it passes on), until the head goes out. name is a canonical name
// the adopted fields do not have (the caller's to check: it would be written twice).
// Without adopted fields it is Header().Add.
func (w *response) AddField(name, value string) { w.addField(name, value, false) }

// AddCleanField is AddField for a field its caller vouches for, which is then written
// without a check: name is a token (http1.ValidName) in canonical form, and value is as
// appendField would write it, without CR or LF and with nothing at either end that
// textproto.TrimString trims. A proxy adds the same few fields of its own to every answer
// (its peer metadata, made once): checking them once spares checking them each time.
func (w *response) AddCleanField(name, value string) { w.addField(name, value, true) }

func (w *response) addField(name, value string, clean bool) {
	if w.headSent || w.hijacked {
		return // as a field set in Header() once the head is out
	}
	if !w.adopted || int(w.nExtra) == len(w.extra) || len(w.header) > 0 {
		w.header[name] = append(w.header[name], value)
		return
	}
	if !clean && !w.c.names.valid(name) {
		return // as collectFields drops a map's key that is not a token
	}
	i := int(w.nExtra) // kept sorted by name, as collectFields sorts a map's keys
	for ; i > 0 && name < w.extra[i-1].name; i-- {
		w.extra[i] = w.extra[i-1]
	}
	w.extra[i] = extraField{name: name, value: [1]string{value}, clean: clean}
	w.nExtra++
}

// unadopt puts the adopted fields and the added ones into the header map, where the
// handler did not set their names itself: the map is then the whole head again. For a
// handler that set a field after adopting (rare): the adopted values stay in their slots,
// so they are still written as received.
func (w *response) unadopt() {
	if !w.adopted {
		return
	}
	h := w.header
	for i := range w.c.recv {
		f := &w.c.recv[i]
		if _, set := h[f.Key]; set {
			continue
		}
		if f.Slot != nil && *f.Slot == f.Value {
			h[f.Key] = unsafe.Slice(f.Slot, 1) //nolint:gosec // one value where the owner keeps it, as its map had it
		} else {
			h[f.Key] = []string{f.Value}
		}
	}
	for i := range w.extra[:w.nExtra] {
		e := &w.extra[i]
		if _, set := h[e.name]; !set {
			h[e.name] = e.value[:]
		}
	}
	w.c.recv, w.c.recvBits = nil, 0
	w.adopted, w.nExtra = false, 0
}

// stillAdopted reports whether the head's fields are still adopted ones, once a field
// the handler set in Header() since (which takes the map's path) has put them back into
// the map.
func (w *response) stillAdopted() bool {
	if w.adopted && len(w.header) > 0 {
		w.unadopt()
	}
	return w.adopted
}

func (w *response) WriteHeader(code int) {
	if w.hijacked || w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic("h1server: invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		w.informational(code)
		return
	}
	w.status, w.wroteHeader = code, true
	if w.stillAdopted() {
		w.cl = w.adoptedCL // and no Connection field
		return
	}
	if v := w.header["Content-Length"]; len(v) > 0 {
		if n, err := strconv.ParseUint(strings.TrimSpace(v[0]), 10, 63); err == nil {
			w.cl = int64(n)
		} else {
			delete(w.header, "Content-Length")
		}
	}
	if hasToken(w.header["Connection"], "close") {
		w.closeAfter = true
	}
}

// informational writes a 1xx answer (103 Early Hints, 100 Continue) at once.
func (w *response) informational(code int) {
	w.c.wmu.Lock()
	defer w.c.wmu.Unlock()
	if code == http.StatusContinue && w.body != nil {
		w.body.sentContinue.Store(true) // the handler answered it itself
	}
	w.unadopt() // the fields go on this head and the final one: from the map
	hb, box := getBuf()
	hb = appendStatusLine(hb, 1, code)
	w.collectFields()
	hb = w.appendFields(hb)
	hb = append(hb, crlf...)
	w.write(hb)
	putBuf(hb, box)
}

// sendContinue answers Expect: 100-continue on the first body read, unless the answer's
// head has been composed (sent, or in out ahead of body bytes). The 100 is marked sent
// under wmu, where the head is composed: a head composed before it says Connection: close,
// and one after it does not, so the connection stays open only when the client was asked
// for its body (drain).
func (w *response) sendContinue() {
	w.c.wmu.Lock()
	defer w.c.wmu.Unlock()
	if !w.headSent && w.err == nil && !w.hijacked && !w.body.sentContinue.Swap(true) {
		w.write(continueLine)
	}
}

var continueLine = []byte("HTTP/1.1 100 Continue\r\n\r\n")

// awaitsContinue says whether the request asked for a 100 Continue not sent yet: a head
// composed now would leave the client's body unasked for.
func (w *response) awaitsContinue() bool {
	return w.body != nil && w.body.expect && !w.body.sentContinue.Load()
}

// bodyAllowed is false for answers that have no body.
func (w *response) bodyAllowed() bool {
	return w.status != http.StatusNoContent && w.status != http.StatusNotModified && w.status >= 200
}

func (w *response) Write(p []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.bodyAllowed() {
		return 0, http.ErrBodyNotAllowed
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.cl >= 0 && w.written+int64(len(p)) > w.cl {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if w.head || len(p) == 0 {
		return len(p), nil
	}
	c := w.c
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !w.headSent && w.adopted && len(c.out) == 0 && !w.awaitsContinue() {
		// An answer passed on: its framing is its adopted Content-Length, so the head can
		// be composed now, in out, and the body follow it there; one buffer goes out. Not
		// behind body bytes already buffered (while a 100 Continue was due).
		c.out = w.appendHead(c.out, false)
	}
	switch {
	case len(c.out)+len(p)+chunkOverhead <= outMax:
		if w.headSent && w.chunked {
			c.out = appendChunk(c.out, p)
		} else {
			c.out = append(c.out, p...)
		}
	case !w.headSent:
		w.sendHead(false, p)
	case w.chunked:
		var size [chunkOverhead]byte
		hdr := appendChunkHeader(size[:0], len(p))
		w.write(c.out, hdr, p, crlf)
		c.out = c.out[:0]
	default:
		w.write(c.out, p)
		c.out = c.out[:0]
	}
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

// chunkOverhead bounds a chunk's size line and CRLF.
const chunkOverhead = 20

// Flush sends what is buffered (the head first).
func (w *response) Flush() { _ = w.FlushError() }

// FlushError is Flush with its error (http.ResponseController).
func (w *response) FlushError() error {
	if w.hijacked {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	c := w.c
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !w.headSent {
		w.sendHead(false, nil)
	} else if len(c.out) > 0 {
		w.write(c.out)
		c.out = c.out[:0]
	}
	return w.err
}

// finish ends the answer after the handler returned: head and body in one write when
// nothing went out yet, else the rest (and the last chunk with the trailers).
func (w *response) finish() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	c := w.c
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !w.headSent {
		w.sendHead(true, nil)
	} else {
		if w.chunked {
			c.out = append(c.out, "0\r\n"...)
			c.out = w.appendTrailers(c.out)
			c.out = append(c.out, crlf...)
		}
		if len(c.out) > 0 {
			w.write(c.out)
		}
	}
	c.out = c.out[:0]
	if w.cl >= 0 && w.written != w.cl && w.bodyAllowed() && !w.head {
		w.closeAfter = true // the client waits for bytes that will not come
	}
}

// sendHead composes the head and writes it with the buffered body (in out) and p. final:
// the handler has returned, so the body is complete and its length known.
func (w *response) sendHead(final bool, p []byte) {
	c := w.c
	hb, box := getBuf()
	hb = w.appendHead(hb, final)
	body := c.out
	if w.head || !w.bodyAllowed() {
		body, p = nil, nil
	}
	if w.chunked {
		n := len(body) + len(p)
		if n > 0 {
			hb = appendChunkHeader(hb, n)
		}
		var tail []byte
		switch {
		case final:
			if n > 0 {
				tail = append(tail, crlf...)
			}
			tail = append(tail, "0\r\n"...)
			tail = w.appendTrailers(tail)
			tail = append(tail, crlf...)
		case n > 0:
			tail = crlf
		}
		w.writeHead(hb, body, p, tail)
	} else {
		w.writeHead(hb, body, p, nil)
	}
	putBuf(hb, box)
	c.out = c.out[:0]
}

// appendHead decides the answer's framing and appends its head to hb; the head counts as
// sent from then on (headSent), the body's bytes going after it. final: as sendHead's.
func (w *response) appendHead(hb []byte, final bool) []byte {
	c := w.c
	w.headSent = true
	h := w.header
	hf := w.collectFields()
	te := hf.transferEncoding
	if hf.hasTransferEncoding {
		delete(h, "Transfer-Encoding") // the server frames the body itself
	}
	hasTrailers := len(hf.trailer) > 0 || hf.prefixedTrailers
	addCL := false
	switch {
	case !w.bodyAllowed():
	case w.head:
	case w.http10:
		if w.cl < 0 {
			if final {
				w.cl, addCL = w.written, true
			} else {
				w.closeAfter = true // the end of the body is the end of the connection
			}
		}
	case len(te) > 0 && http1.EqualFoldASCII(te[0], "chunked"), hasTrailers:
		w.chunked = true
		delete(h, "Content-Length")
		w.cl = -1
	case w.cl >= 0:
	case final:
		w.cl, addCL = w.written, true
	default:
		w.chunked = true
	}
	if w.awaitsContinue() {
		w.closeAfter = true // the client may send the body it was not asked for, or not
	}
	hb = appendStatusLine(hb, w.req.ProtoMinor, w.status)
	hb = w.appendFields(hb)
	if !hf.date {
		hb = append(hb, c.s.clock.dateLine()...)
	}
	if addCL && w.bodyAllowed() {
		hb = append(hb, "Content-Length: "...)
		hb = strconv.AppendInt(hb, w.cl, 10)
		hb = append(hb, crlf...)
	}
	if w.chunked {
		hb = append(hb, "Transfer-Encoding: chunked\r\n"...)
	}
	switch {
	case w.closeAfter && !hasToken(hf.connection, "close"):
		hb = append(hb, "Connection: close\r\n"...)
	case w.http10 && !w.closeAfter:
		hb = append(hb, "Connection: keep-alive\r\n"...)
	}
	return append(hb, crlf...)
}

// writeHead writes head, body, p and tail: in one buffer when they are small (one
// write(2)), else as a vector (one writev(2)).
func (w *response) writeHead(hb, body, p, tail []byte) {
	if len(hb)+len(body)+len(p)+len(tail) <= outMax {
		hb = append(hb, body...)
		hb = append(hb, p...)
		hb = append(hb, tail...)
		w.write(hb)
		return
	}
	w.write(hb, body, p, tail)
}

// headFields is what the head's framing needs to know of the handler's fields, found in
// the same pass that collects the fields to write (collectFields).
type headFields struct {
	transferEncoding, trailer, connection []string
	hasTransferEncoding                   bool // the key is set, whatever its values
	date                                  bool // a Date field is set
	prefixedTrailers                      bool // a key announces a trailer with http.TrailerPrefix
}

// collectFields gathers the handler's header fields to write into c.fields, sorted by name
// as net/http does (names that are not tokens are dropped, and so are Transfer-Encoding
// and the http.TrailerPrefix keys), in one pass over the map that also finds what the
// head's framing needs. An adopted map's fields that are still as its owner received and
// checked them (receivedFields: an upstream answer's, passed on) are noted instead, to be
// written first in the order they came, as a proxy passes them on.
func (w *response) collectFields() headFields {
	if w.stillAdopted() {
		return w.collectAdopted()
	}
	var hf headFields
	fs := w.c.fields[:0]
	rf, bits := w.receivedFields(), uint16(0)
fields:
	for k, vv := range w.header {
		switch k {
		case "Transfer-Encoding":
			hf.transferEncoding, hf.hasTransferEncoding = vv, true
			continue // the server frames the body itself (not written, even on a 1xx answer)
		case "Trailer":
			hf.trailer = vv
		case "Connection":
			hf.connection = vv
		case "Date":
			hf.date = true
		}
		for i := range rf {
			if rf[i].Received(k, vv) {
				bits |= 1 << i
				continue fields
			}
		}
		if strings.HasPrefix(k, http.TrailerPrefix) {
			hf.prefixedTrailers = true
			continue
		}
		if !w.c.names.valid(k) {
			continue
		}
		fs = append(fs, field{k, vv}) // the values with the name: no second lookup
	}
	for i := 1; i < len(fs); i++ { // by name; an insertion sort: there are a few
		for j := i; j > 0 && fs[j].name < fs[j-1].name; j-- {
			fs[j], fs[j-1] = fs[j-1], fs[j]
		}
	}
	w.c.fields, w.c.recv, w.c.recvBits = fs, rf, bits
	return hf
}

// collectAdopted is collectFields for adopted fields: those are c.recv, all written, then
// the added ones (in extra, sorted and checked by AddField).
func (w *response) collectAdopted() headFields {
	w.c.fields = w.c.fields[:0]
	return headFields{date: w.hasDate}
}

// receivedFields are the adopted map's fields as its owner received them, when it says
// (at most 16: one bit each in recvBits).
func (w *response) receivedFields() []http1.ReceivedField {
	o, ok := w.owner.(interface{ ReceivedFields() []http1.ReceivedField })
	if !ok {
		return nil
	}
	rf := o.ReceivedFields()
	if len(rf) > 16 {
		return nil
	}
	return rf
}

// appendFields writes the fields collectFields gathered (without Content-Length on a
// chunked answer): those still as received in their order, checked when they were read,
// then those added to adopted ones (AddField), then the others; line breaks in their
// values become spaces.
func (w *response) appendFields(b []byte) []byte {
	for i, f := range w.c.recv {
		if w.c.recvBits&(1<<i) == 0 || w.chunked && f.Key == "Content-Length" {
			continue
		}
		b = appendAsIs(b, f.Key, f.Value)
	}
	w.c.recv, w.c.recvBits = nil, 0
	if w.adopted {
		for i := range w.extra[:w.nExtra] {
			if e := &w.extra[i]; e.clean {
				b = appendAsIs(b, e.name, e.value[0])
			} else {
				b = appendField(b, e.name, e.value[0])
			}
		}
	}
	fs := w.c.fields
	for _, f := range fs {
		if w.chunked && f.name == "Content-Length" {
			continue
		}
		for _, v := range f.values {
			b = appendField(b, f.name, v)
		}
	}
	clear(fs) // hold on to no handler's strings
	w.c.fields = fs[:0]
	return b
}

// nameCache remembers the last few field names found valid, copied into its own bytes:
// the names a handler sets on every answer (a proxy's own fields, the configuration's)
// are the same each time, and comparing one with a remembered copy costs a fraction of
// checking it byte by byte. The copies keep nothing of an answer alive, and cost no
// allocation; a name longer than a slot is checked every time.
type nameCache struct {
	names [4][32]byte
	lens  [4]uint8
	next  uint8
}

// valid is http1.ValidName(k), checked byte by byte only when k is not a name the cache
// holds.
func (nc *nameCache) valid(k string) bool {
	for i := range nc.names {
		if n := int(nc.lens[i]); n == len(k) && n > 0 && string(nc.names[i][:n]) == k {
			return true
		}
	}
	if !http1.ValidName(k) {
		return false
	}
	if len(k) <= len(nc.names[0]) {
		i := nc.next % uint8(len(nc.names))
		nc.lens[i] = uint8(copy(nc.names[i][:], k))
		nc.next++
	}
	return true
}

// field is a header field's name and values, for sorting.
type field struct {
	name   string
	values []string
}

// appendAsIs writes the field line "k: v" CRLF for a field known to need no cleaning: one
// adopted as received, or added with AddCleanField.
func appendAsIs(b []byte, k, v string) []byte {
	b = append(b, k...)
	b = append(b, ':', ' ')
	b = append(b, v...)
	return append(b, '\r', '\n')
}

// appendField writes the field line "k: v" CRLF, v trimmed and each line break in it a
// space (it would end the field).
func appendField(b []byte, k, v string) []byte {
	b = append(b, k...)
	b = append(b, ':', ' ')
	b = http1.AppendSpaceLineBreaks(b, textproto.TrimString(v))
	return append(b, '\r', '\n')
}

// appendTrailers writes the trailers: the announced names set after the head, and the
// names set with http.TrailerPrefix.
func (w *response) appendTrailers(b []byte) []byte {
	for _, decl := range w.header["Trailer"] {
		for k := range strings.SplitSeq(decl, ",") {
			k = http.CanonicalHeaderKey(strings.TrimSpace(k))
			if !httpguts.ValidTrailerHeader(k) {
				continue
			}
			if _, dup := w.header[http.TrailerPrefix+k]; dup {
				continue
			}
			for _, v := range w.header[k] {
				b = appendField(b, k, v)
			}
		}
	}
	for k, vv := range w.header {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok && httpguts.ValidTrailerHeader(name) {
			for _, v := range vv {
				b = appendField(b, name, v)
			}
		}
	}
	return b
}

// write sends bufs, recording a failure; the connection closes after this answer then.
func (w *response) write(bufs ...[]byte) {
	if w.err != nil {
		return
	}
	if err := w.c.writeBufs(bufs); err != nil {
		w.err = err
		w.closeAfter = true
	}
}

// Hijack hands the connection to the handler (an upgrade, a CONNECT tunnel). Bytes the
// loop has read past the head are read first from the returned connection.
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hijacked {
		return nil, nil, http.ErrHijacked
	}
	c := w.c
	if c.holding {
		return nil, nil, errHeld
	}
	c.wmu.Lock()
	if w.headSent && len(c.out) > 0 {
		w.write(c.out)
		c.out = c.out[:0]
	}
	c.wmu.Unlock()
	c.endRequest() // watch.go: no read of the connection goes on
	w.hijacked = true
	c.mu.Lock()
	c.hijacked = true
	c.mu.Unlock()
	if c.s.ConnState != nil {
		c.s.ConnState(c.rwc, http.StateHijacked)
	}
	nc := c.rwc
	if c.r < c.w {
		nc = &Handoff{Conn: c.rwc, pending: append([]byte(nil), c.buf[c.r:c.w]...), ctx: c.ctx}
		c.r = c.w
	}
	return nc, bufio.NewReadWriter(bufio.NewReader(nc), bufio.NewWriter(nc)), nil
}

// appendStatusLine writes "HTTP/1.x code reason".
func appendStatusLine(b []byte, minor, code int) []byte {
	if code == http.StatusOK && minor == 1 { // most answers: no number to format, no text to look up
		return append(b, "HTTP/1.1 200 OK\r\n"...)
	}
	if minor == 0 {
		b = append(b, "HTTP/1.0 "...)
	} else {
		b = append(b, "HTTP/1.1 "...)
	}
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(code)...)
	return append(b, crlf...)
}

func appendChunkHeader(b []byte, n int) []byte {
	b = strconv.AppendInt(b, int64(n), 16)
	return append(b, crlf...)
}

func appendChunk(b, p []byte) []byte {
	b = appendChunkHeader(b, len(p))
	b = append(b, p...)
	return append(b, crlf...)
}

func appendInt(b []byte, n int64) []byte { return strconv.AppendInt(b, n, 10) }
