package h2client

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/lucid-mesh/lucid/internal/dataplane/reqctx"
	"golang.org/x/net/http2"
)

// An answer's memory, recycled, serves the next answer: the next one carries its own
// fields and trailers only. A body the caller wrapped still finds its answer's memory;
// another response has none to recycle.
func TestRecycledAnswer(t *testing.T) {
	addr := startServer(t, 0, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Path", r.URL.Path)
		if r.URL.Path == "/a" {
			w.Header().Set("X-Only-A", "1")
			w.Header().Set("Trailer", "X-Sum")
		}
		_, _ = io.WriteString(w, "body of "+r.URL.Path)
		if r.URL.Path == "/a" {
			w.Header().Set("X-Sum", "3")
		}
	})
	cc := dial(t, addr, Config{})
	for i, path := range []string{"/a", "/b", "/a", "/b"} {
		resp, err := cc.RoundTrip(newReq(t.Context(), t, http.MethodGet, "http://"+addr+path, nil))
		if err != nil {
			t.Fatal(err)
		}
		if body := readAll(t, resp); body != "body of "+path {
			t.Fatalf("%d %s: body %q", i, path, body)
		}
		_, onlyA := resp.Header["X-Only-A"]
		if resp.Header.Get("X-Path") != path || onlyA != (path == "/a") || (resp.Trailer.Get("X-Sum") == "3") != (path == "/a") {
			t.Fatalf("%d %s: fields %v, trailers %v", i, path, resp.Header, resp.Trailer)
		}
		r := Recycler(resp, resp.Body)
		if r == nil {
			t.Fatalf("%d %s: no Recycler for an answer of RoundTrip", i, path)
		}
		h := resp.Header
		r.Recycle()
		if len(h) != 0 {
			t.Fatalf("%d %s: a recycled answer's map keeps %v", i, path, h)
		}
	}
	other := &http.Response{Body: http.NoBody, Header: http.Header{}}
	if Recycler(other, other.Body) != nil {
		t.Fatal("a Recycler for a response this package did not make")
	}
}

// Streams and answers recycled by many callers at once each serve a later request
// intact: every caller reads its own answer's fields and body.
func TestRecycledStreamsConcurrent(t *testing.T) {
	addr := startServer(t, 0, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Path", r.URL.Path)
		_, _ = io.WriteString(w, r.URL.Path)
	})
	cc := dial(t, addr, Config{})
	ctx := reqctx.New(t.Context()) // the proxy's own context type: watched without a goroutine
	defer ctx.Cancel(nil)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 150 {
				path := fmt.Sprintf("/%d/%d", w, i)
				resp, err := cc.RoundTrip(newReq(ctx, t, http.MethodGet, "http://"+addr+path, nil))
				if err != nil {
					t.Error(err)
					return
				}
				b, err := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if err != nil || string(b) != path || resp.Header.Get("X-Path") != path {
					t.Errorf("%s: body %q (%v), X-Path %q", path, b, err, resp.Header.Get("X-Path"))
					return
				}
				Recycler(resp, resp.Body).Recycle()
			}
		}()
	}
	wg.Wait()
}

// waitFor yields until cond, read under cc.mu, holds.
func waitFor(cc *ClientConn, cond func() bool) {
	for {
		cc.mu.Lock()
		ok := cond()
		cc.mu.Unlock()
		if ok {
			return
		}
		runtime.Gosched()
	}
}

// A request body's writer goroutine outlives the moment its stream looks over (END_STREAM
// sent and received, body closed): a stream recycled then is not reused under it. The
// upstream answers before the small body fits its window; the body's last DATA frame then
// waits for the connection's writer while the caller closes and recycles the answer. The
// upstream still gets the whole body on its own stream, and the connection carries the
// next request.
func TestRecycleWaitsForTheBodyWriter(t *testing.T) {
	const body = 100
	grant := make(chan struct{})
	var grantOnce sync.Once
	t.Cleanup(func() { grantOnce.Do(func() { close(grant) }) })
	got := make(chan int, 1) // body bytes the upstream received on the first stream, at its END_STREAM
	addr := fakeServer(t, func(fr *http2.Framer, _ net.Conn) {
		_ = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 10})
		id := readHeaders(fr)
		if id == 0 {
			return
		}
		// The body's first DATA frame (the window's 10 bytes) is read before the answer: the
		// caller holds the writer once it has the answer, and a first frame not yet written
		// then would wait for it for ever.
		n := 0
		for n == 0 {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			if df, ok := f.(*http2.DataFrame); ok && df.StreamID == id {
				n += len(df.Data())
			}
		}
		_ = writeResponse(fr, id, "200", true) // answered before the body fits the window
		<-grant
		_ = fr.WriteWindowUpdate(id, 1000)
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.DataFrame:
				if f.StreamID == id {
					n += len(f.Data())
					if f.StreamEnded() {
						got <- n
					}
				}
			case *http2.HeadersFrame:
				_ = writeResponse(fr, f.StreamID, "204", true)
			}
		}
	})
	cc := dial(t, addr, Config{})
	waitFor(cc, func() bool { return cc.peerWindow == 10 })

	// A context that cannot end, as the proxy's own (reqctx) watched without a goroutine:
	// a context.AfterFunc watch keeps the stream from being reused at all.
	req := newReq(context.Background(), t, http.MethodPost, "http://"+addr+"/", strings.NewReader(strings.Repeat("x", body)))
	resp, err := cc.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	st := resp.Body.(*stream)
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	cc.wmu.Lock() // the body's last DATA frame waits for the connection's writer
	grantOnce.Do(func() { close(grant) })
	waitFor(cc, func() bool { return st.sentEnd })
	_ = resp.Body.Close()
	Recycler(resp, resp.Body).Recycle()
	cc.wmu.Unlock()

	if n := <-got; n != body {
		t.Fatalf("the upstream got %d body bytes on the request's stream, want %d", n, body)
	}
	resp2, err := cc.RoundTrip(newReq(t.Context(), t, http.MethodGet, "http://"+addr+"/next", nil))
	if err != nil {
		t.Fatalf("the next request on the connection: %v", err)
	}
	_ = resp2.Body.Close()
	if resp2.StatusCode != http.StatusNoContent {
		t.Fatalf("the next request: status %d, want 204", resp2.StatusCode)
	}
}
