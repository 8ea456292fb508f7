package forward_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/cluster"
	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/pool"
	"github.com/lucid-mesh/lucid/internal/dataplane/reqctx"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// spyCtx is a parent context that counts the Value calls made through it once armed (a
// reqctx.Ctx passes Value on to its parent: a call here is a read of the child's memory).
// Its Done is nil, so a child Ctx registers nothing on it.
type spyCtx struct {
	context.Context
	armed atomic.Bool
	calls atomic.Int64
}

func (s *spyCtx) Value(key any) any {
	if s.armed.Load() {
		s.calls.Add(1)
	}
	return s.Context.Value(key)
}

// A host that leaves its cluster ends the response streaming from it (stream.go:
// attempt.EndStream) with attempt.rc.Cancel, then closes the body. When the upstream is
// HTTP/2 (h2client) the stream still watches the attempt's context until its body is
// closed, so that Cancel tells the stream, which resets itself on a goroutine of its own
// (h2client stream.Cancelled: go st.cancel(st.rctx)) that reads the context later.
// Settled must then say false: release.go would otherwise zero the context (it is
// exchange.firstCtx) while that goroutine is about to read it.
func TestSettledFalseWhenCancelToldAnH2Stream(t *testing.T) {
	up := backend(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	c := static("h2", up)
	c.Protocol = resource.HTTP2
	ps := pool.NewSet(slog.New(slog.DiscardHandler))
	t.Cleanup(ps.Close)
	ps.Update(map[string]*resource.Cluster{"h2": c})
	p := ps.Get("h2")
	if !p.KeepsNoRequest() {
		t.Fatal("the pool's own HTTP/2 client is expected (LUCID_HTTP2_CLIENT must not be nethttp)")
	}

	spy := &spyCtx{Context: context.Background()}
	var rc reqctx.Ctx // as exchange.firstCtx: part of a larger object, Init'd in place
	rc.Init(spy)
	req, err := http.NewRequestWithContext(&rc, http.MethodGet, "http://svc/", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := p.RoundTrip(req, up, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(resp.Body); err != nil || string(b) != "ok" { // read to its end, as respond does
		t.Fatalf("body %q, %v", b, err)
	}

	// attempt.EndStream, as it runs when the drain grace period of the removed host ends
	// between respond's last Read (io.EOF) and its untrack.
	spy.armed.Store(true)
	rc.Cancel(errors.New("endpoint left cluster"))
	settled := rc.Settled()
	_ = resp.Body.Close()

	if !settled {
		return // release would leave the exchange to the GC
	}
	deadline := time.Now().Add(5 * time.Second)
	for spy.calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := spy.calls.Load(); n > 0 {
		t.Fatalf("Settled() = true after a Cancel that told the HTTP/2 stream, yet %d read(s) of the context "+
			"followed on the stream's reset goroutine: release.go would have zeroed and reused it (exchange.firstCtx)", n)
	}
}

// The same through the proxy: HTTP/2 upstream, a host whose streams are ended (DrainHost,
// as when it leaves its cluster) over and over while requests flow. Now and then the end
// of a stream falls between respond's last Read (io.EOF) and its untrack: the exchange is
// reused (its firstCtx Settled) while the h2client stream's reset goroutine is still to
// read firstCtx. The race detector reports it (or the goroutine finds firstCtx zeroed and
// panics on its nil parent).
func TestExchangeNotReusedWhileH2StreamResetPending(t *testing.T) {
	up := backend(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	h2 := static("h2", up)
	h2.Protocol = resource.HTTP2
	e := newEnv(t, routes(toCluster("h2")), h2)
	e.cm.SetDrainOptions(cluster.DrainOptions{HTTPGrace: time.Nanosecond, TCPGrace: -1})
	host := e.cm.Get("h2").Hosts()[0]
	var reused, dropped atomic.Int64
	t.Cleanup(forward.OnRelease(func(ok bool) {
		if ok {
			reused.Add(1)
		} else {
			dropped.Add(1)
		}
	}))

	stop := keepDraining(e, host) // recycle_test.go
	var wg sync.WaitGroup
	end := time.Now().Add(time.Second)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				w := httptest.NewRecorder()
				r := httptest.NewRequest(http.MethodGet, "http://svc:9080/", nil)
				func() {
					defer func() { // a stream ended mid-body is reset: Serve panics with http.ErrAbortHandler
						if v := recover(); v != nil && v != http.ErrAbortHandler { //nolint:errorlint // net/http compares it so
							panic(v)
						}
					}()
					e.fwd.Serve(w, r, forward.Inbound{Routes: e.routes, RouteConfigName: e.routeName,
						HTTP: &resource.HTTPManager{}, Listener: "0.0.0.0_9080", Direction: "outbound"})
				}()
				select {
				case <-e.infos:
				default:
				}
			}
		}()
	}
	time.Sleep(time.Until(end))
	wg.Wait()
	stop()
	t.Logf("%d exchanges reused, %d left to the GC", reused.Load(), dropped.Load())
}

// blockingWriter is a downstream ResponseWriter whose first body write runs hook before
// it returns.
type blockingWriter struct {
	*httptest.ResponseRecorder
	once sync.Once
	hook func()
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseRecorder.Write(p)
	w.once.Do(w.hook)
	return n, err
}

// An HTTP/1.1 response cut by the end of its stream (the host left its cluster) is not a
// response "read to its end": release.go's settled must not be set, and the record must
// say the upstream failed after the response started. The pool's h1Body answers a Read
// after Close with io.EOF (pool/h1.go), so respond takes the cut for the end of the body.
func TestH1ResponseCutByEndStreamIsAFailure(t *testing.T) {
	cut := make(chan struct{})
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "4")
		_, _ = io.WriteString(w, "ab")
		w.(http.Flusher).Flush()
		<-r.Context().Done() // the proxy closed the connection (EndStream closed the body)
		close(cut)
	})
	e := newEnv(t, routes(toCluster("c")), static("c", up))
	e.cm.SetDrainOptions(cluster.DrainOptions{HTTPGrace: time.Nanosecond, TCPGrace: -1})
	host := e.cm.Get("c").Hosts()[0]
	rel := watchReleases(t)

	w := &blockingWriter{ResponseRecorder: httptest.NewRecorder(), hook: func() {
		e.cm.DrainHost("gone", host, "endpoint left its cluster")
		select {
		case <-cut:
		case <-time.After(5 * time.Second):
			t.Error("the stream was not ended")
		}
	}}
	r := httptest.NewRequest(http.MethodGet, "http://svc:9080/", nil)
	aborted := func() (aborted bool) {
		defer func() {
			if v := recover(); v != nil {
				aborted = v == http.ErrAbortHandler //nolint:errorlint // net/http compares it so
			}
		}()
		e.fwd.Serve(w, r, forward.Inbound{Routes: e.routes, RouteConfigName: e.routeName,
			HTTP: &resource.HTTPManager{}, Listener: "0.0.0.0_9080", Direction: "outbound"})
		return false
	}()
	info := e.info()
	reused := rel.next(t)
	t.Logf("body %q of 4 bytes, aborted %v, flags %q, details %q, reused %v", w.Body.String(), aborted,
		info.Flags.String(), info.ResponseCodeDetails, reused)
	if reused {
		t.Error("the exchange was reused although its response was cut mid-body (settled set from an EOF that Close made)")
	}
	if !aborted || info.Flags == 0 {
		t.Errorf("a response cut after 2 of its 4 bytes passed as complete: aborted %v, flags %q, details %q",
			aborted, info.Flags.String(), info.ResponseCodeDetails)
	}
}
