package pool

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// A plain response's body ends, its connection goes back to the pool and carries the next
// request at once, before the first response is recycled (forward recycles it once the
// downstream head is written, after Serve returned). The second response, read
// meanwhile, is not touched by the first one's Recycle; informational answers before a
// plain one (read by net/http) leave no field in it; and the recycled memory serves a
// later response with that response's fields only.
func TestRecycleAfterConnectionReused(t *testing.T) {
	addr := rawServer(t, func(c net.Conn, br *bufio.Reader, n int) {
		for i := 0; ; i++ {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			var b strings.Builder
			if i%2 == 1 {
				b.WriteString("HTTP/1.1 103 Early Hints\r\nLink: </early>\r\n\r\n")
			}
			body := "body of " + req.URL.Path
			fmt.Fprintf(&b, "HTTP/1.1 200 OK\r\nX-Path: %s\r\nX-Conn: %d\r\n", req.URL.Path, n)
			if req.URL.Path == "/a" {
				b.WriteString("X-Only-A: 1\r\n")
			}
			fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
			if _, err := io.WriteString(c, b.String()); err != nil {
				return
			}
		}
	})
	p := newSet(t, h1Cluster("c")).Get("c")
	roundTrip := func(path string) *http.Response {
		t.Helper()
		resp, err := p.RoundTrip(newReq(t, http.MethodGet, path, nil), addr, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if Recycler(resp) == nil {
			t.Fatalf("%s: not read as a plain response", path)
		}
		return resp
	}
	check := func(resp *http.Response, path string) {
		t.Helper()
		if got := resp.Header.Get("X-Path"); got != path {
			t.Fatalf("%s: X-Path %q (fields %v)", path, got, resp.Header)
		}
		_, onlyA := resp.Header["X-Only-A"]
		if resp.Header.Get("Link") != "" || onlyA != (path == "/a") || resp.Header.Get("X-Conn") != "0" {
			t.Fatalf("%s: fields %v", path, resp.Header)
		}
	}
	readAll := func(resp *http.Response, path string) {
		t.Helper()
		b, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil || string(b) != "body of "+path {
			t.Fatalf("%s: body %q, %v", path, b, err)
		}
	}

	a := roundTrip("/a") //nolint:bodyclose // readAll closes it
	check(a, "/a")
	readAll(a, "/a")     // the connection is idle again
	b := roundTrip("/b") //nolint:bodyclose // readAll closes it
	if b == a {
		t.Fatal("the second response is the first one's memory before it was recycled")
	}
	Recycler(a).Recycle() // forward: once the downstream head of /a is written
	check(b, "/b")
	readAll(b, "/b")
	Recycler(b).Recycle()
	for _, path := range []string{"/c", "/a", "/d"} {
		r := roundTrip(path) //nolint:bodyclose // readAll closes it
		check(r, path)
		readAll(r, path)
		Recycler(r).Recycle()
	}
}
