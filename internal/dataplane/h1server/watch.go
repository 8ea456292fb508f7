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
// has been read. Quick requests cost nothing for it; a slow one two deadline calls.

// watchState is a connection's watch, under conn.mu.
type watchState struct {
	since    int64         // clock ns when the handler started (0: not in a handler)
	readable bool          // the body is read: the connection may be read meanwhile
	cancel   *reqctx.Ctx   // the request's context
	done     chan struct{} // the watcher's end (nil: no watcher)
}

// startRequest records that a handler runs for a request whose context is cancel.
func (c *conn) startRequest(cancel *reqctx.Ctx, readable bool) {
	c.mu.Lock()
	c.watch = watchState{since: c.s.clock.nano.Load(), readable: readable, cancel: cancel}
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
