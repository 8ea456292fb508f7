package reqctx

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type flag struct{ n atomic.Int32 }

func (f *flag) Cancelled() { f.n.Add(1) }

var errGone = errors.New("host gone")

// A child cancelled by its parent has the parent's cause; cancelling the child leaves the
// parent alone; watchers are told once, unwatched ones never.
func TestCancelPropagates(t *testing.T) {
	root := New(context.Background())
	child := New(root)
	grand := New(child)
	var told, untold flag
	var w1, w2 Watch
	if !grand.Watch(&w1, &told) || !grand.Watch(&w2, &untold) {
		t.Fatal("Watch on a live Ctx refused")
	}
	if !grand.Unwatch(&w2) {
		t.Fatal("Unwatch of a registered watch said it had fired")
	}
	root.Cancel(errGone)
	for _, c := range []*Ctx{root, child, grand} {
		select {
		case <-c.Done():
		default:
			t.Fatal("Done not closed after the root's cancel")
		}
		if !errors.Is(c.Err(), context.Canceled) || !errors.Is(Cause(c), errGone) {
			t.Fatalf("err %v cause %v, want Canceled and the root's cause", c.Err(), Cause(c))
		}
	}
	if told.n.Load() != 1 || untold.n.Load() != 0 {
		t.Fatalf("watchers told %d and %d times, want 1 and 0", told.n.Load(), untold.n.Load())
	}
	if grand.Unwatch(&w1) {
		t.Fatal("Unwatch after the cancel said the watcher had not been told")
	}
	root.Cancel(errors.New("later"))
	if !errors.Is(Cause(root), errGone) {
		t.Fatal("a second Cancel changed the cause")
	}
	var late flag
	var w3 Watch
	if grand.Watch(&w3, &late) || late.n.Load() != 0 {
		t.Fatal("Watch on a cancelled Ctx registered")
	}

	p := New(context.Background())
	c := New(p)
	c.Cancel(errGone)
	if p.Err() != nil || !errors.Is(Cause(c), errGone) {
		t.Fatalf("cancelling the child: parent %v, child cause %v", p.Err(), Cause(c))
	}
	if p.watchers.Len() != 0 {
		t.Fatal("a cancelled child stays on its parent's list")
	}
}

// Contexts of the context package on either side: a standard parent's cancel and cause
// reach a Ctx, and a standard child of a Ctx is cancelled with it.
func TestStandardContexts(t *testing.T) {
	sp, cancel := context.WithCancelCause(context.Background())
	c := New(sp)
	std, stop := context.WithTimeout(c, time.Hour)
	defer stop()
	cancel(errGone)
	<-c.Done()
	<-std.Done()
	if !errors.Is(Cause(c), errGone) || !errors.Is(std.Err(), context.Canceled) {
		t.Fatalf("cause %v, standard child %v", Cause(c), std.Err())
	}
	if c := New(context.WithoutCancel(sp)); c.Done() == nil || c.Err() != nil {
		t.Fatal("a Ctx under a parent that never ends is not live")
	}
	ended, end := context.WithCancelCause(context.Background())
	end(errGone)
	if c := New(ended); !errors.Is(Cause(c), errGone) {
		t.Fatalf("a Ctx under an ended parent: cause %v", Cause(c))
	}
	fired := make(chan struct{})
	if stop := New(ended).AfterFunc(func() { close(fired) }); stop() {
		t.Fatal("AfterFunc on an ended Ctx reported it stopped f")
	}
	<-fired
}

// CancelAfter ends a Ctx with its cause when the time is up, and sets its deadline.
func TestCancelAfter(t *testing.T) {
	errTimeout := errors.New("per-try timeout")
	c := New(context.Background())
	c.CancelAfter(time.Millisecond, errTimeout)
	if d, ok := c.Deadline(); !ok || time.Until(d) > time.Millisecond {
		t.Fatalf("deadline %v %v", d, ok)
	}
	<-c.Done()
	if !errors.Is(Cause(c), errTimeout) {
		t.Fatalf("cause %v", Cause(c))
	}
	early := New(context.Background())
	early.CancelAfter(time.Hour, errTimeout)
	early.Cancel(errGone)
	if !errors.Is(Cause(early), errGone) || early.timer.Stop() {
		t.Fatal("a cancel before the time is up keeps its cause and stops the timer")
	}
}

// A child Ctx and a Watch cost one allocation and none; a Ctx inside a larger object none.
func TestAllocationsInit(t *testing.T) {
	root := New(context.Background())
	var holder struct {
		ctx Ctx
		_   [4]string
	}
	n := testing.AllocsPerRun(100, func() {
		holder.ctx = Ctx{} // a fresh zero Ctx each run
		holder.ctx.Init(root)
		holder.ctx.Cancel(nil)
	})
	if n != 0 {
		t.Fatalf("%.1f allocations for Init, want 0", n)
	}
}

// A child Ctx and a Watch cost one allocation and none.
func TestAllocations(t *testing.T) {
	root := New(context.Background())
	var f flag
	var w Watch
	n := testing.AllocsPerRun(100, func() {
		c := New(root)
		c.Watch(&w, &f)
		c.Unwatch(&w)
		c.Cancel(nil)
	})
	if n != 1 {
		t.Fatalf("%.1f allocations for a child with a watch, want 1", n)
	}
}

// Settled: true only after a Cancel that cancelled the Ctx itself, with its timer stopped
// before firing, its parent's callback taken off before it ran and no watcher to tell.
func TestSettled(t *testing.T) {
	root := New(context.Background())
	defer root.Cancel(nil)
	std, stdCancel := context.WithCancel(context.Background())
	defer stdCancel()

	live := New(root)
	if live.Settled() {
		t.Error("a live Ctx is settled")
	}
	live.Cancel(nil)
	if !live.Settled() {
		t.Error("a Ctx under a Ctx, cancelled by Cancel: not settled")
	}

	timed := New(std)
	timed.CancelAfter(time.Hour, errGone)
	timed.Cancel(nil)
	if !timed.Settled() {
		t.Error("a Ctx under a standard context with a timer, cancelled by Cancel: not settled")
	}

	fired := New(root)
	fired.CancelAfter(time.Millisecond, errGone)
	<-fired.Done()
	fired.Cancel(nil)
	if fired.Settled() {
		t.Error("a Ctx cancelled by its timer is settled: the timer's goroutine may still hold it")
	}

	watched := New(root)
	var w Watch
	var f flag
	watched.Watch(&w, &f)
	watched.Cancel(nil)
	if watched.Settled() {
		t.Error("a Ctx whose cancel told a watcher is settled: the watcher may act on a goroutine of its own")
	}
	unwatched := New(root)
	unwatched.Watch(&w, &f)
	unwatched.Unwatch(&w)
	unwatched.Cancel(nil)
	if !unwatched.Settled() {
		t.Error("a Ctx whose watcher left before the cancel: not settled")
	}

	p := New(root)
	viaParent := New(p)
	p.Cancel(nil)
	viaParent.Cancel(nil)
	if viaParent.Settled() {
		t.Error("a Ctx cancelled by its parent is settled")
	}

	stdParent, cancel := context.WithCancel(context.Background())
	viaStd := New(stdParent)
	cancel()
	<-viaStd.Done()
	viaStd.Cancel(nil)
	if viaStd.Settled() {
		t.Error("a Ctx cancelled by its standard parent's AfterFunc is settled")
	}
}

// A Request starts each use empty but for its context, which costs no copy after the
// first; Clear drops the last use's fields.
func TestRequest(t *testing.T) {
	var holder struct {
		ctx Ctx
		req Request
	}
	holder.ctx.Init(context.Background())
	first := holder.req.Blank(&holder.ctx)
	first.Method, first.Host = "GET", "a.test"
	if first.Context() != context.Context(&holder.ctx) {
		t.Fatal("the request's context is not the holder's")
	}
	holder.req.Clear()
	if first.Method != "" || first.Host != "" || first.Context() != context.Context(&holder.ctx) {
		t.Fatalf("after Clear: %q %q, context kept %v", first.Method, first.Host, first.Context() == context.Context(&holder.ctx))
	}
	first.Method = "POST"
	if n := testing.AllocsPerRun(100, func() {
		r := holder.req.Blank(&holder.ctx)
		r.Method = "PUT"
	}); n != 0 {
		t.Fatalf("Blank allocates %.0f times after the first", n)
	}
	if again := holder.req.Blank(&holder.ctx); again != first || again.Method != "" {
		t.Fatalf("Blank: the same request, empty: %v %q", again == first, again.Method)
	}
}
