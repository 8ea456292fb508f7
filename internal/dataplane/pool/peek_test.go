package pool

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// peeker is the pool's body read where it lies.
type peeker interface {
	Peekable() bool
	PeekBody(most int) ([]byte, error)
	SkipBody(n int)
}

// A Content-Length body read with PeekBody and SkipBody is the body sent, in the order
// sent, however the server cut it into writes and however little of each peek is used;
// the connection goes back to the pool once the last bytes are skipped, and serves the
// next request. A body larger than the read buffer is left to Read.
func TestPeekBody(t *testing.T) {
	body := strings.Repeat("0123456789abcdef", 900) // 14,400 bytes: within the read buffer
	var big atomic.Bool
	var conns atomic.Int32
	addr := rawServer(t, func(c net.Conn, br *bufio.Reader, _ int) {
		conns.Add(1)
		for {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			b := body
			if big.Load() {
				b = strings.Repeat(body, 3)
			}
			_, _ = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(b))
			for i := 0; i < len(b); i += 7000 {
				_, _ = io.WriteString(c, b[i:min(i+7000, len(b))])
				time.Sleep(time.Millisecond)
			}
		}
	})
	p := newSet(t, h1Cluster("c")).Get("c")
	for round := range 2 {
		resp, err := p.RoundTrip(newReq(t, "GET", "/", nil), addr, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		pk, ok := resp.Body.(peeker)
		if !ok || !pk.Peekable() {
			t.Fatalf("the body %T cannot be peeked", resp.Body)
		}
		var got []byte
		for i := 0; ; i++ {
			b, err := pk.PeekBody(5000)
			if len(b) > 5000 {
				t.Fatalf("peeked %d bytes, asked for at most 5000", len(b))
			}
			use := len(b)
			if i%3 == 1 && use > 1 {
				use /= 2 // the rest comes again with the next peek
				err = nil
			}
			if last := len(got)+len(b) == len(body); last != errors.Is(err, io.EOF) && use == len(b) {
				t.Fatalf("peek of %d bytes, %d of %d before them: %v", len(b), len(got), len(body), err)
			}
			got = append(got, b[:use]...)
			pk.SkipBody(use)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if string(got) != body {
			t.Fatalf("round %d: body of %d bytes differs from the %d sent", round, len(got), len(body))
		}
		_ = resp.Body.Close() // at once, as a proxy does once it has the last bytes
		if b, err := pk.PeekBody(10); len(b) != 0 || !errors.Is(err, io.EOF) {
			t.Fatalf("after the end: %q, %v", b, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for two requests: the first was not given back", n)
	}
	big.Store(true)
	resp, err := p.RoundTrip(newReq(t, "GET", "/", nil), addr, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if pk, ok := resp.Body.(peeker); !ok || pk.Peekable() {
		t.Fatalf("a body of %d bytes, more than the read buffer, is peekable (%T)", resp.ContentLength, resp.Body)
	}
	if b, err := io.ReadAll(resp.Body); err != nil || string(b) != strings.Repeat(body, 3) {
		t.Fatalf("the larger body: %d bytes, %v", len(b), err)
	}
}

// A body the server ends early is an unexpected EOF after the bytes it sent, as Read's.
func TestPeekBodyCut(t *testing.T) {
	addr := rawServer(t, func(c net.Conn, br *bufio.Reader, _ int) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n0123456789")
		_ = c.Close()
	})
	p := newSet(t, h1Cluster("c")).Get("c")
	resp, err := p.RoundTrip(newReq(t, "GET", "/", nil), addr, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	pk := resp.Body.(peeker)
	var got []byte
	for {
		b, err := pk.PeekBody(64)
		got = append(got, b...)
		pk.SkipBody(len(b))
		if err != nil {
			if !errors.Is(err, io.ErrUnexpectedEOF) || string(got) != "0123456789" {
				t.Fatalf("got %q then %v; want the 10 bytes sent, then an unexpected EOF", got, err)
			}
			return
		}
	}
}

// A body closed between a peek and its skip ends the exchange there: the rest of the body
// is never read as the start of the next answer, the connection is not given back (the
// next request gets a new one, and its own answer), and later peeks and skips of the
// closed body say so and change nothing.
func TestPeekBodyClosedMidway(t *testing.T) {
	var conns atomic.Int32
	addr := rawServer(t, func(c net.Conn, br *bufio.Reader, _ int) {
		n := conns.Add(1)
		for {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			b := fmt.Sprintf("connection %d: %s", n, strings.Repeat("x", 100))
			_, _ = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(b), b)
		}
	})
	p := newSet(t, h1Cluster("c")).Get("c")
	resp, err := p.RoundTrip(newReq(t, "GET", "/", nil), addr, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	pk := resp.Body.(peeker)
	b, err := pk.PeekBody(10)
	if err != nil || string(b) != "connection" {
		t.Fatalf("first peek = %q, %v", b, err)
	}
	_ = resp.Body.Close() // before SkipBody: a downstream that went away mid-copy
	pk.SkipBody(len(b))
	if b, err := pk.PeekBody(10); len(b) != 0 || !errors.Is(err, errBodyClosed) {
		t.Fatalf("peek after Close = %q, %v; want nothing and %v", b, err, errBodyClosed)
	}
	res, err := do(t, p, addr, newReq(t, "GET", "/", nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "connection 2: " + strings.Repeat("x", 100); res.code != 200 || res.body != want {
		t.Fatalf("the next request: %d %q; want 200 %q (a new connection)", res.code, res.body, want)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections; want 2 (the closed body's not reused)", n)
	}
}
