package h1server

import (
	"errors"
	"os"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/reqctx"
)

// A client that goes away while its request is served cancels the request's context, as
// with net/http; but instead of a read in the background for every request, the reaper
// starts one only for a request still in its handler after a tick (250 ms), once its body
// has been read. Quick requests cost nothing for it; a slow one two deadline calls. A
// request served inside the wait for the next (held.go) cannot be read around: for it the
// reaper peeks at the socket instead (each tick, then less often, at least every
// maxPeekGap), and cancels it when the client's end of the stream (or a reset) is next.

// watchState is a connection's watch, under conn.mu.
type watchState struct {
	since    int64         // clock ns when the handler started (0: not in a handler)
	readable bool          // the body is read: the connection may be read meanwhile
	held     bool          // served inside the wait: peek, do not read
	gone     bool          // held, and the client went away (cancelled)
	peekAt   int64         // held: clock ns of the next peek
	cancel   *reqctx.Ctx   // the request's context
	done     chan struct{} // the watcher's end (nil: no watcher)
}

// startRequest records that a handler runs for a request whose context is cancel.
func (c *conn) startRequest(cancel *reqctx.Ctx, readable, held bool) {
	c.mu.Lock()
	c.watch = watchState{since: c.s.clock.nano.Load(), readable: readable, held: held, cancel: cancel}
	c.mu.Unlock()
}

// bodyRead marks the request's body as read to its end.
func (c *conn) bodyRead() {
	c.mu.Lock()
	c.watch.readable = true
	c.mu.Unlock()
}

// maybeWatch is the reaper's check, at time now (ns). Called with s.mu held.
func (c *conn) maybeWatch(now int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := &c.watch
	if w.since == 0 || !w.readable || w.done != nil || now-w.since < int64(tick) || c.hijacked || c.done {
		return
	}
	if w.held {
		// A peek every tick at first, then less often the longer the request runs (a
		// quarter of its age, at most every maxPeekGap): a stream open for hours costs a
		// system call a second. Under c.mu, so the request cannot end (endRequest) while it
		// is cancelled.
		if w.gone || now < w.peekAt {
			return
		}
		w.peekAt = now + min((now-w.since)/4, int64(maxPeekGap))
		if c.sock.PeerClosed() {
			w.gone = true
			w.cancel.Cancel(nil)
		}
		return
	}
	w.done = make(chan struct{})
	go c.watchRead(w.done, w.cancel)
}

// watchRead reads what the client sends while its request is served: the next request
// is kept for later, the end of the connection cancels the request.
func (c *conn) watchRead(done chan struct{}, cancel *reqctx.Ctx) {
	defer close(done)
	c.fill()
	if c.rerr != nil && !errors.Is(c.rerr, os.ErrDeadlineExceeded) {
		cancel.Cancel(nil)
	}
}

// endRequest stops the watch when the handler is done (or takes the connection over):
// a watcher still reading is interrupted and waited for.
func (c *conn) endRequest() {
	c.mu.Lock()
	done := c.watch.done
	c.watch = watchState{}
	c.mu.Unlock()
	if done == nil {
		return
	}
	_ = c.rwc.SetReadDeadline(aLongTimeAgo)
	<-done
	_ = c.rwc.SetReadDeadline(time.Time{})
	if errors.Is(c.rerr, os.ErrDeadlineExceeded) {
		c.rerr = nil
	}
}

var aLongTimeAgo = time.Unix(1, 0)

// maxPeekGap bounds how late the reaper notices that the client of a long request served
// inside the wait went away.
const maxPeekGap = time.Second
