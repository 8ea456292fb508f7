// Package reqctx is the cancellable context of one request on the proxy's hot path, and
// of each of its upstream attempts. It sits under the request path:
//
//	h1server (the request's Ctx) → forward (an attempt's Ctx, a child) → pool (a Watch:
//	an upstream connection blocked in I/O is interrupted when the attempt ends)
//
// It behaves as context.WithCancelCause does, but what hangs on it costs no allocation: a
// child Ctx and a Watch are linked into their parent's list through fields of their own,
// where context's cancelCtx makes a done channel, a children map, and (AfterFunc) a
// context and a closure per registration. Done's channel is made only when asked for.
//
// Its cause is read with Cause (context.Cause cannot see it: the standard library finds
// the cause of its own types only). Children made by the context package (WithTimeout,
// WithCancel) work as with any context: they register through AfterFunc.
package reqctx

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/ilist"
)

// Ctx is a cancellable context. Make one with New; it is safe for concurrent use.
type Ctx struct {
	parent context.Context

	mu       sync.Mutex
	done     chan struct{} // made by Done or a cancel, closed by a cancel
	err      atomic.Pointer[error]
	cause    error
	watchers ilist.List[Watch, *Watch] // each is told once, at the cancel

	link       Watch       // this Ctx on a parent Ctx
	stopParent func() bool // its registration on a parent of another kind (nil: none)

	deadline time.Time   // CancelAfter's; zero: the parent's
	timer    *time.Timer // CancelAfter's, stopped by a cancel

	settled bool // Settled's answer, set by the Cancel that cancelled c
}

var _ context.Context = (*Ctx)(nil)

// Watcher is told when the Ctx it watches is cancelled.
type Watcher interface {
	// Cancelled runs once, on the goroutine that cancels, under the Ctx's lock: it must be
	// quick and must not call the Ctx (an interrupt, a flag).
	Cancelled()
}

// Watch is one Watcher's registration on a Ctx, kept by its owner (no allocation).
type Watch struct {
	w     Watcher
	links ilist.Links[Watch]
}

// Links is where the Watch is listed on its Ctx (ilist.Elem).
func (w *Watch) Links() *ilist.Links[Watch] { return &w.links }

// New returns a Ctx cancelled with its parent (with the parent's cause) or by Cancel.
func New(parent context.Context) *Ctx {
	c := new(Ctx)
	c.Init(parent)
	return c
}

// Init makes c, a zero Ctx that is part of a larger object (sparing New's allocation),
// what New returns. c must not be copied afterwards.
func (c *Ctx) Init(parent context.Context) {
	c.parent = parent
	if p, ok := parent.(*Ctx); ok {
		if !p.Watch(&c.link, (*parentDone)(c)) {
			c.cancel(Cause(p))
		}
		return
	}
	if parent.Done() == nil {
		return // never cancelled
	}
	if parent.Err() != nil {
		c.cancel(context.Cause(parent))
		return
	}
	c.stopParent = context.AfterFunc(parent, func() { c.cancel(context.Cause(parent)) })
}

// parentDone is a Ctx as the Watcher of its parent Ctx.
type parentDone Ctx

func (p *parentDone) Cancelled() {
	c := (*Ctx)(p)
	// Called under the parent's lock, which Cause would take: the parent's cause is passed
	// on through its field, set before its watchers are told.
	c.cancel(c.parent.(*Ctx).cause)
}

// CancelAfter cancels c with cause once d has passed (a per-try timeout), unless it was
// cancelled before; Deadline reports it. Call it once, right after New.
func (c *Ctx) CancelAfter(d time.Duration, cause error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err.Load() != nil {
		return
	}
	c.deadline = time.Now().Add(d)
	c.timer = time.AfterFunc(d, func() { c.Cancel(cause) })
}

// Cancel cancels c with cause (nil: context.Canceled), its children and watchers with it.
// Later calls do nothing.
func (c *Ctx) Cancel(cause error) {
	ok, quiet := c.cancel(cause)
	if !ok {
		return
	}
	// A parent Ctx tells its watchers under its lock, which Unwatch takes: once it
	// returns, the parent is done with c. Another parent's AfterFunc may be about to run.
	detached := true
	if p, ok := c.parent.(*Ctx); ok {
		p.Unwatch(&c.link)
	} else if c.stopParent != nil {
		detached = c.stopParent()
	}
	c.mu.Lock()
	c.settled = detached && quiet
	c.mu.Unlock()
}

// Settled says whether c was cancelled by Cancel and nothing c registered can call into
// it any more: the parent's callback was taken off before it ran, CancelAfter's timer
// stopped before it fired, and no watcher was left to tell (a watcher may act on its own
// goroutine: an AfterFunc's function, a stream reset, which may look at c later). Only
// then may the memory of a Ctx that is part of a larger object be reused for another
// (zeroed, then Init), once the owner knows that nothing else holds c either.
func (c *Ctx) Settled() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.settled
}

// cancel records the cancellation and tells the watchers; false when c was cancelled
// already. quiet: it had no watcher to tell and stopped the timer before it fired (or
// there was none).
func (c *Ctx) cancel(cause error) (ok, quiet bool) {
	if cause == nil {
		cause = context.Canceled
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err.Load() != nil {
		return false, false
	}
	c.cause = cause
	c.err.Store(&canceled)
	if c.done == nil {
		c.done = closedChan
	} else {
		close(c.done)
	}
	told := false
	for w := c.watchers.Front(); w != nil; w = c.watchers.Front() {
		c.watchers.Remove(w)
		w.w.Cancelled()
		told = true
	}
	return true, !told && (c.timer == nil || c.timer.Stop())
}

// canceled is what Err returns once cancelled (err points to it: no allocation).
var canceled = context.Canceled

var closedChan = func() chan struct{} { ch := make(chan struct{}); close(ch); return ch }()

// Watch registers w (owned by the caller) to tell x when c is cancelled. False when c is
// cancelled already: x is not told then.
func (c *Ctx) Watch(w *Watch, x Watcher) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err.Load() != nil {
		return false
	}
	w.w = x
	c.watchers.Push(w)
	return true
}

// Unwatch takes w off c. True when its Watcher had not been told (and now never will be),
// as the stop function of context.AfterFunc reports.
func (c *Ctx) Unwatch(w *Watch) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.watchers.Remove(w)
}

// Deadline is CancelAfter's or the parent's, whichever comes first.
func (c *Ctx) Deadline() (time.Time, bool) {
	d, ok := c.parent.Deadline()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.deadline.IsZero() && (!ok || c.deadline.Before(d)) {
		return c.deadline, true
	}
	return d, ok
}

// Done is closed when c is cancelled; the channel is made on the first call.
func (c *Ctx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
	}
	return c.done
}

// Err is context.Canceled once c is cancelled, else nil.
func (c *Ctx) Err() error {
	if e := c.err.Load(); e != nil {
		return *e
	}
	return nil
}

// Value is the parent's.
func (c *Ctx) Value(key any) any { return c.parent.Value(key) }

// AfterFunc runs f in its own goroutine once c is cancelled, as context.AfterFunc does
// (contexts the context package derives from c register with it).
func (c *Ctx) AfterFunc(f func()) (stop func() bool) {
	a := &afterFunc{f: f}
	if !c.Watch(&a.watch, a) {
		go f()
		return func() bool { return false }
	}
	return func() bool { return c.Unwatch(&a.watch) }
}

type afterFunc struct {
	f     func()
	watch Watch
}

func (a *afterFunc) Cancelled() { go a.f() }

// Cause is the cause ctx was cancelled with: a Ctx's own, else context.Cause's.
func Cause(ctx context.Context) error {
	if c, ok := ctx.(*Ctx); ok {
		if c.err.Load() == nil {
			return nil
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.cause
	}
	return context.Cause(ctx)
}
