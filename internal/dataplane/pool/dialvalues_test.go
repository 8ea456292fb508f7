package pool

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/reqctx"
)

// watchedCtx counts the AfterFunc registrations on a reqctx.Ctx still in place.
type watchedCtx struct {
	*reqctx.Ctx
	live atomic.Int32
}

func (w *watchedCtx) AfterFunc(f func()) func() bool {
	w.live.Add(1)
	stop := w.Ctx.AfterFunc(f)
	return func() bool { w.live.Add(-1); return stop() }
}

type valueKey struct{}

// A dial's context has the request's cancellation but none of its values (goroutines of
// the standard library may read them after the dial), and keeps its AfterFunc visible:
// the dial's deadline context registers on the request's context and is gone once
// cancelled (context.WithValue's wrapper makes the standard library watch with a
// goroutine of its own, which may read the request's context after the request ended).
func TestDialValues(t *testing.T) {
	rc := reqctx.New(context.WithValue(context.Background(), valueKey{}, "from the request"))
	defer rc.Cancel(nil)
	parent := &watchedCtx{Ctx: rc}
	var nc net.Conn
	cb := &counts{}
	ctx := withDialValues(parent, cb, &nc)
	if got, _ := ctx.Value(countersKey{}).(*counts); got != cb {
		t.Error("counters not found")
	}
	if got, _ := ctx.Value(dialedKey{}).(*net.Conn); got != &nc {
		t.Error("dialed slot not found")
	}
	if got := ctx.Value(valueKey{}); got != nil {
		t.Errorf("the request's value %v reaches the dial (goroutines of the standard library may read it after the request)", got)
	}
	dl, cancel := context.WithDeadline(ctx, time.Now().Add(time.Hour))
	if n := parent.live.Load(); n != 1 {
		t.Fatalf("%d registrations on the request's context while dialling, want 1 (no watching goroutine)", n)
	}
	cancel()
	if n := parent.live.Load(); n != 0 {
		t.Fatalf("%d registrations left after the dial, want 0", n)
	}
	<-dl.Done()

	// A cancelled request still ends a dial in progress.
	rc2 := reqctx.New(context.Background())
	dl2, cancel2 := context.WithDeadline(withDialValues(rc2, cb, nil), time.Now().Add(time.Hour))
	defer cancel2()
	rc2.Cancel(nil)
	select {
	case <-dl2.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the dial's context outlived the request's")
	}
}
