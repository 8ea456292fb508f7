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

	"golang.org/x/net/http2"
)

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
		_ = writeResponse(fr, id, "200", true) // answered before the body fits the window
		<-grant
		_ = fr.WriteWindowUpdate(id, 1000)
		n := 0
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

// The field names a connection remembers are the short ones requests repeat: requests
// carrying long, ever new names (a client may send names of tens of KiB, within
// max_request_headers_kb) leave no copy of them on the upstream connection for its
// lifetime.
func TestConnRemembersNoLongFieldNames(t *testing.T) {
	addr := startServer(t, 0, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	cc := dial(t, addr, Config{})
	for i := range namesMax {
		req := newReq(t.Context(), t, http.MethodGet, "http://"+addr+"/", nil)
		req.Header.Set(fmt.Sprintf("X-%04d-%s", i, strings.Repeat("N", 4<<10)), "v")
		if err := roundTripErr(cc, req); err != nil {
			t.Fatal(err)
		}
	}
	cc.wmu.Lock()
	kept := 0
	for k, v := range cc.names {
		kept += len(k) + len(v)
	}
	cc.wmu.Unlock()
	if kept > 64<<10 {
		t.Fatalf("the connection keeps %d KiB of field names after %d requests with a 4 KiB name each", kept>>10, namesMax)
	}
}
