package forward

import (
	"sync"
	"sync/atomic"

	"github.com/lucid-mesh/lucid/internal/dataplane/bufpool"
)

// Reusing exchanges. An exchange is about 1.3 KB with the first attempt's context, URL and
// header values inside it; allocated per request, it was the largest part of what the GC
// collects at load. Serve gives it back to exchanges once the request is over, but only
// when nothing can reach it any more: the downstream writer, the connection pool, a
// goroutine or a timer holding a pointer into a reused exchange would see another
// request's data. reusable lists what proves that; anything else (a body sent upstream,
// retries, mirrors, upgrades, timeouts that fired, a panic) leaves the exchange to the GC.

// exchanges holds exchanges that no request reaches: zero, but for firstReq.
var exchanges = sync.Pool{New: func() any { return new(exchange) }}

// onRelease, when set (tests), learns each exchange's fate at release.
var onRelease atomic.Pointer[func(reused bool)]

// release puts x back into exchanges when reusable says nothing can reach it.
func (x *exchange) release() {
	ok := x.reusable()
	if f := onRelease.Load(); f != nil {
		(*f)(ok)
	}
	if !ok {
		return
	}
	// The downstream request's memory too, unless an authorization server was called with
	// it (its client's goroutines may outlive the call).
	if rr, isRR := x.w.(requestReleaser); isRR && !x.in.Authz.CallsOut() {
		rr.ReleaseRequest()
	}
	keep, hdr, list := x.firstReq, bufpool.EmptyHeader(x.hdr), x.list
	if keep != nil {
		keep.Clear() // the last request's header map and URL are not kept alive
	}
	if list != nil {
		clear(list.f[:list.n]) // nor its fields' strings
		list.n = 0
	}
	*x = exchange{}
	x.firstReq, x.hdr, x.list = keep, hdr, list
	exchanges.Put(x)
}

// requestReleaser is a ResponseWriter whose server reuses the request's memory once the
// handler says nothing holds it (h1server).
type requestReleaser interface{ ReleaseRequest() }

// reusable says whether nothing but x's own goroutine can reach x or what is inside it:
//
//   - serve returned and finish did not reset the stream (a panic may leave anything
//     behind);
//   - no mirror went out (mirror goroutines run on);
//   - no attempt was made (a local reply: nothing upstream saw the exchange), or exactly
//     one, which ended (attempt.end), with its own context (not an upgrade's) that
//     Cancel settled (no timer or parent callback left to call into it), without a body
//     sent upstream (a writer goroutine may read it), through a pool that keeps nothing of
//     a bodiless request once its response body is closed, and whose response respond
//     read to its end and sent downstream. The downstream writer, which may encode the
//     head after Serve returns, holds nothing of the exchange: respond gives the fields it
//     sets their own memory.
func (x *exchange) reusable() bool {
	if !x.served || x.abort || x.mirrored {
		return false
	}
	a := &x.try
	switch a.n {
	case 0:
		return true
	case 1:
		return a.rc == &x.firstCtx && !a.live && x.firstCtx.Settled() && x.up.body == nil &&
			x.poolKeepsNo && x.delivered
	}
	return false
}
