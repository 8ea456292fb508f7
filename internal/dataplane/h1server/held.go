package h1server

import (
	"errors"
	"net/http"

	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
	"github.com/lucid-mesh/lucid/internal/dataplane/sockio"

	"golang.org/x/net/http/httpguts"
)

// Requests served inside the wait for the next one. A loop that reads a request, serves
// it and reads again makes a read(2) after every answer that finds nothing (the client
// has not had the answer yet), because the runtime's poller forgets, at the start of
// each read, the readiness it noted before: only a read can tell. On a plaintext socket
// the loop instead serves a request from inside the poller's wait for the next one
// (sockio.Conn.Hold): what arrives meanwhile is remembered, so after an answer the
// goroutine waits at once, and reads only when woken. One read(2) per request, as an
// event loop makes.
//
// While the wait is held only the goroutine reads the socket, so only a request that
// reads nothing more from it is served so (holdable): no body, no upgrade or tunnel (the
// handler would take the connection over). A client that goes away meanwhile is noticed
// by the reaper peeking at the socket (watch.go) rather than by a read in the background.

// heldState is serveHeld's, between the calls of its step.
type heldState struct {
	st  *requestState
	req *http.Request // parsed, to serve next (nil: none)
	rb  *body
	// read: the socket may hold bytes no read took (Hold began, a wake-up, a full read);
	// false once a read took less than it could (the socket was empty then).
	read    bool
	waiting bool // nothing of the next head has come (idle)
	started bool // part of the next head has come: its header timeout runs
	out     bool // req (parsed) is not holdable: served after Hold returns
	end     bool // the connection ends
}

// errHeld is Hijack's error while a request is served inside the wait: holdable lets no
// request that asks to take the connection over come that way.
var errHeld = errors.New("h1server: the connection cannot be taken over by this request (it has no Upgrade or CONNECT)")

// holdable reports whether req can be served inside the wait for the next request.
func (c *conn) holdable(req *http.Request, rb *body, st *requestState) bool {
	if c.sock == nil || rb != nil || req.Close || req.Method == http.MethodConnect {
		return false
	}
	if st.fields&http1.FieldConnection != 0 && httpguts.HeaderValuesContainsToken(req.Header["Connection"], "upgrade") {
		return false
	}
	// The checker passes on nothing unchecked after such a request (it would after an
	// upgrade, or a body): checked here too, so that a head it lets through some other way
	// is never served with the reads held.
	return c.check == nil || c.check.AtHead()
}

// serveHeld serves req (holdable), and each holdable request after it, inside one wait
// of the poller. It returns the first request that is not holdable, parsed and not yet
// served (nil: readHead reads on: a head not all arrived that must be answered outside,
// or an error to report), and false when the connection ends.
func (c *conn) serveHeld(st *requestState, req *http.Request) (*requestState, *http.Request, *body, bool) {
	c.held = heldState{st: st, req: req, read: true}
	c.holding = true
	err := c.sock.Hold(c.stepFn)
	c.holding = false
	h := c.held
	c.held = heldState{}
	switch {
	case h.end, err != nil: // err: closed (the reaper, Shutdown) or past a deadline
		return nil, nil, nil, false
	case h.out:
		return h.st, h.req, h.rb, true
	}
	return nil, nil, nil, true
}

// step is Hold's step: serve the parsed request, then read the next head, waiting when
// the socket is empty.
func (c *conn) step() sockio.Next {
	h := &c.held
	for {
		if h.req != nil {
			more := c.run(h.st, h.req, nil, true)
			h.st, h.req = nil, nil
			if !more || c.s.closing.Load() || c.s.noKeep.Load() {
				h.end = true
				return sockio.Skip
			}
		}
		if end := c.bufferedHead(); end >= 0 {
			c.deadline.Store(0)
			h.started = false
			if h.waiting {
				h.waiting = false
				c.setIdle(false)
			}
			st, req, rb, ok := c.next(end)
			switch {
			case !ok:
				h.end = true
				return sockio.Skip
			case !c.holdable(req, rb, st):
				h.st, h.req, h.rb, h.out = st, req, rb, true
				return sockio.Skip
			}
			h.st, h.req = st, req
			continue
		}
		if c.w-c.r >= c.maxHeader() || c.rerr != nil {
			return sockio.Skip // readHead answers or reports it
		}
		switch {
		case c.r < c.w || c.check != nil && c.check.Buffered():
			if !h.started { // part of a head: the header timeout runs from its first byte
				h.started = true
				c.deadline.Store(c.s.clock.deadline(c.s.ReadHeaderTimeout))
			}
		case !h.waiting:
			h.waiting = true
			c.setIdle(true)
			c.deadline.Store(c.s.clock.deadline(c.s.IdleTimeout))
		}
		if !h.read {
			h.read = true // the next call comes after a wake-up
			return sockio.WaitRead
		}
		before := c.w
		full, err := c.fillHeld()
		if errors.Is(err, sockio.ErrWouldBlock) {
			return sockio.WaitRead // h.read stays: read once woken
		}
		// A full read may have left bytes in the socket, and the checker keeps what it
		// has not handed on yet (a second head that came in the same read).
		h.read = full || c.check != nil && c.check.Buffered()
		if c.w > before && h.waiting {
			h.waiting = false
			c.setIdle(false)
		}
	}
}

// fillHeld is fill inside Hold: one read that does not wait (sockio.ErrWouldBlock when
// nothing came, and then no error is kept). full: the read took all the room there was.
func (c *conn) fillHeld() (full bool, err error) {
	c.makeRoom()
	p := c.buf[c.w:cap(c.buf)]
	var n int
	if c.check != nil {
		n, err = c.check.ReadWith(p, c.tryRead)
	} else {
		n, err = c.sock.TryRead(p)
	}
	c.w += n
	c.buf = c.buf[:c.w]
	if err != nil && !errors.Is(err, sockio.ErrWouldBlock) {
		c.rerr = err
	}
	return n == len(p), err
}
