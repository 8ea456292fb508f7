package h2client

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/lucid-mesh/lucid/internal/dataplane/reqctx"
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
