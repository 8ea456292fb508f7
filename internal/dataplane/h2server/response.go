package h2server

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"

	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
)

// The stream is its handler's http.ResponseWriter. The head goes out when it must (the
// handler flushes, the body outgrows the stream's buffer, or the handler returns), so a
// small answer is one HEADERS and one DATA(END_STREAM), or HEADERS(END_STREAM) alone,
// with its Content-Length; the header map is read then.
var (
	_ http.ResponseWriter = (*stream)(nil)
	_ http.Flusher        = (*stream)(nil)
)

// ReleaseRequest tells the server that the handler, and whatever it gave the request to,
// will hold nothing of the request (its header map, URL, context) once the handler has
// returned: the stream's memory may then serve the connection's next stream. A proxy
// whose request state is reusable says so (forward); a handler that does not call it
// keeps its request to itself.
func (st *stream) ReleaseRequest() { st.released = true }

func (st *stream) Header() http.Header {
	if st.header == nil {
		st.header = make(http.Header)
	}
	return st.header
}

// AdoptHeader makes h the response's header map, in place of copying h's fields into
// it, when nothing has been set or written yet (false otherwise). A proxy passing an
// upstream response's fields on uses it; h is the response's from then on (the handler
// must not use it for anything else). owner, when not nil, is what h's memory belongs
// to: once the stream is finished, and if the handler released its request
// (ReleaseRequest), the server calls owner.Recycle, and h may then serve another
// response.
func (st *stream) AdoptHeader(h http.Header, owner interface{ Recycle() }) bool {
	if st.wroteHeader || len(st.header) > 0 || h == nil {
		return false
	}
	st.header, st.owner = h, owner
	return true
}

func (st *stream) WriteHeader(code int) {
	if st.wroteHeader {
		return
	}
	if st.handlerDone {
		panic("h2server: WriteHeader called after the handler returned")
	}
	if code < 100 || code > 999 {
		panic("h2server: invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code < 200 {
		c := st.c
		c.mu.Lock()
		if st.writeErr() == nil {
			if code == http.StatusContinue {
				st.needContinue = false
			}
			c.writeHead(st, code, st.header, false, nil)
			_ = c.flushLocked()
		}
		c.mu.Unlock()
		return
	}
	st.decide(code)
}

// decide records the answer's status and reads what the header map says about the body:
// its Content-Length and declared trailers.
func (st *stream) decide(code int) {
	st.status, st.wroteHeader = code, true
	st.declCL = -1
	if v := st.header["Content-Length"]; len(v) > 0 {
		if n, err := strconv.ParseUint(strings.TrimSpace(v[0]), 10, 63); err == nil {
			st.declCL = int64(n)
		} else {
			delete(st.header, "Content-Length")
		}
	}
	for _, v := range st.header["Trailer"] {
		for _, k := range strings.Split(v, ",") {
			st.declareTrailer(strings.TrimSpace(k))
		}
	}
}

func (st *stream) declareTrailer(k string) {
	k = http.CanonicalHeaderKey(k)
	if k == "" || !httpguts.ValidTrailerHeader(k) || slices.Contains(st.trailers, k) {
		return
	}
	st.trailers = append(st.trailers, k)
}

func (st *stream) Write(p []byte) (int, error) { return st.write(p, "") }

func (st *stream) WriteString(s string) (int, error) { return st.write(nil, s) }

func (st *stream) write(p []byte, s string) (int, error) {
	if st.handlerDone {
		panic("h2server: Write called after the handler returned")
	}
	if !st.wroteHeader {
		st.WriteHeader(http.StatusOK)
	}
	n := len(p) + len(s)
	if !bodyAllowed(st.status) {
		return 0, http.ErrBodyNotAllowed
	}
	st.wrote += int64(n)
	if st.declCL >= 0 && st.wrote > st.declCL {
		return 0, errTooLong
	}
	if st.out == nil {
		st.out, st.outBox = getBuf(st.declCL)
	}
	if len(st.out)+n <= cap(st.out) {
		st.out = append(append(st.out, p...), s...)
		return n, nil
	}
	c := st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := st.sendOutLocked(); err != nil {
		return 0, err
	}
	if st.req.Method == http.MethodHead {
		return n, nil
	}
	if s != "" {
		for len(s) > 0 { // through the buffer, a chunk at a time: no copy of s as a whole
			k := min(len(s), cap(st.out))
			if err := c.sendData(st, append(st.out[:0], s[:k]...), false); err != nil {
				return n - len(s), err
			}
			s = s[k:]
		}
		return n, nil
	}
	if err := c.sendData(st, p, false); err != nil {
		return 0, err
	}
	return n, nil
}

var errTooLong = errors.New("h2server: handler wrote more than the declared Content-Length")

// sendOutLocked queues the head (if not yet out) and the buffered body.
func (st *stream) sendOutLocked() error {
	c := st.c
	if err := st.writeErr(); err != nil {
		return err
	}
	if !st.sentHeader {
		st.sentHeader = true
		head := st.req.Method == http.MethodHead
		if head {
			st.out = st.out[:0]
		}
		st.headerConnection()
		c.writeHead(st, st.status, st.header, head, nil)
		if head {
			st.endSent = true // HEAD: the head ends the stream
			return nil
		}
	}
	if st.req.Method == http.MethodHead {
		st.out = st.out[:0]
		return nil
	}
	err := c.sendData(st, st.out, false)
	st.out = st.out[:0]
	return err
}

// headerConnection drops the Connection field, which HTTP/2 does not carry; "close" makes
// the connection go away once its streams are done, as net/http does.
func (st *stream) headerConnection() {
	v, ok := st.header["Connection"]
	if !ok {
		return
	}
	delete(st.header, "Connection")
	if len(v) > 0 && http1.EqualFoldASCII(strings.TrimSpace(v[0]), "close") {
		st.c.goAwayLocked(http2.ErrCodeNo, false)
	}
}

// prefixedTrailers declares the trailers set with http.TrailerPrefix and moves their
// values under their own names.
func (st *stream) prefixedTrailers() {
	for k, vv := range st.header {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			st.declareTrailer(name)
			st.header[http.CanonicalHeaderKey(name)] = vv
		}
	}
}

// RequestFields says which of the names http1.FieldOf knows the request's head had, as
// h1server's does: a handler that has not added any of them to the request's header map
// looks up only those it had. A name deleted since (Expect, Host, Trailer) may still be
// in the set.
func (st *stream) RequestFields() http1.FieldSet { return st.fields }

func (st *stream) Flush() { _ = st.FlushError() }

// FlushError sends the head and what the handler has written (http.ResponseController).
func (st *stream) FlushError() error {
	if !st.wroteHeader {
		st.WriteHeader(http.StatusOK)
	}
	c := st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := st.sendOutLocked(); err != nil {
		return err
	}
	return c.flushLocked()
}

// endResponseLocked sends the rest of the answer and its end, once the handler is done.
func (st *stream) endResponseLocked() error {
	if !st.wroteHeader {
		st.decide(http.StatusOK)
	}
	c := st.c
	// The head's fields are gathered in one pass over the map, which also finds trailers
	// set with http.TrailerPrefix (writeHead's collect); the head is written from them.
	var hasDate bool
	if !st.sentHeader {
		if err := st.writeErr(); err != nil {
			return err
		}
		st.headerConnection()
		var prefixed bool
		if hasDate, prefixed = c.collect(st.header); prefixed {
			st.prefixedTrailers()
			hasDate, _ = c.collect(st.header)
		}
	} else {
		st.prefixedTrailers()
	}
	trailers := false
	for _, k := range st.trailers {
		if _, ok := st.header[k]; ok {
			trailers = true
			break
		}
	}
	head := st.req.Method == http.MethodHead
	if !st.sentHeader {
		st.sentHeader = true
		end := head || (len(st.out) == 0 && len(st.trailers) == 0)
		c.writeCollected(st, st.status, end, hasDate)
		if end {
			return nil
		}
	} else if st.endSent {
		return nil // HEAD: ended with its head
	}
	if err := c.sendData(st, st.out, !trailers); err != nil {
		return err
	}
	st.out = st.out[:0]
	if trailers {
		slices.Sort(st.trailers)
		c.writeHead(st, 0, st.header, true, st.trailers)
	}
	return nil
}
