package http1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// chunkConn is a net.Conn whose reads return its input in pieces of the sizes given
// (cycled), then io.EOF.
type chunkConn struct {
	net.Conn
	in    []byte
	sizes []int
	i     int
	eof   bool // the input ran out
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.in) == 0 {
		c.eof = true
		return 0, io.EOF
	}
	n := len(c.in)
	if len(c.sizes) > 0 {
		n = max(1, c.sizes[c.i%len(c.sizes)])
		c.i++
	}
	n = min(n, len(p), len(c.in))
	copy(p, c.in[:n])
	c.in = c.in[n:]
	return n, nil
}

func (c *chunkConn) SetReadDeadline(time.Time) error { return nil }

// served is what net/http reads through a Conn: each request's method, target and body,
// or the error that ended it.
type served struct {
	method, target, body string
	rejection            *Rejection
	bodyErr              string
}

func serve(t testing.TB, g *Conn) (out []served, end error) {
	t.Helper()
	truncated := func() bool { c, ok := g.Conn.(*chunkConn); return ok && c.eof }
	br := bufio.NewReader(g)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return out, err
		}
		rj, _ := g.Next()
		s := served{method: req.Method, target: req.RequestURI, rejection: rj}
		b, err := io.ReadAll(req.Body)
		s.body = string(b)
		if err != nil {
			s.bodyErr = g.BodyError()
			if s.bodyErr == "" && !truncated() {
				t.Fatalf("body error %v without a framing error from Conn", err)
			}
			return append(out, s), err
		}
		out = append(out, s)
		if s.rejection != nil || g.Upgraded() {
			return out, nil
		}
	}
}

func TestConnPipelinedRequests(t *testing.T) {
	stream := "GET /a HTTP/1.1\r\nHost: x\r\n\r\n" +
		"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" +
		"\r\n" + // an empty line between requests is skipped
		"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n" +
		"GET /d#frag HTTP/1.1\r\nHost: x\r\n\r\n"
	for _, sizes := range [][]int{nil, {1}, {3, 7}, {64}} {
		g := NewConn(&chunkConn{in: []byte(stream), sizes: sizes}, Limits{}, nil)
		got, end := serve(t, g)
		if !errors.Is(end, io.EOF) {
			t.Fatalf("sizes %v: ended with %v", sizes, end)
		}
		want := []served{{method: "GET", target: "/a"}, {method: "POST", target: "/b", body: "hello"},
			{method: "POST", target: "/c", body: "abcde"}, {method: "GET", target: "/d"}}
		if len(got) != len(want) {
			t.Fatalf("sizes %v: served %+v", sizes, got)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("sizes %v: request %d = %+v, want %+v", sizes, i, got[i], want[i])
			}
		}
	}
}

// Heads that each arrive alone in one read, as keep-alive clients send them, are checked
// where they landed (inPlace): passed on unchanged, a body that follows in its own read
// framed, a fragment still cut from the target, a smuggling head still refused.
func TestConnHeadsInTheirOwnReads(t *testing.T) {
	pieces := []string{
		"GET /first HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n", "hello",
		"GET /d#frag HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /smuggle HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n",
	}
	var stream string
	var sizes []int
	for _, p := range pieces {
		stream += p
		sizes = append(sizes, len(p))
	}
	got, _ := serve(t, NewConn(&chunkConn{in: []byte(stream), sizes: sizes}, Limits{}, nil))
	want := []served{{method: "GET", target: "/first"}, {method: "GET", target: "/a"},
		{method: "POST", target: "/b", body: "hello"}, {method: "GET", target: "/d"}}
	if len(got) != len(want)+1 {
		t.Fatalf("served %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("request %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if rj := got[len(want)].rejection; rj == nil || rj.Details != DetailsChunkedCL || rj.Target != "/smuggle" {
		t.Errorf("the smuggling head: %+v, rejection %+v", got[len(want)], rj)
	}

	// A whole head in one read after part of another is the rest of that one, not a
	// request of its own: the bytes go on in order, and a head cut short stays refused.
	for _, c := range []struct {
		pieces []string
		want   []served
	}{
		{[]string{"GET /first HTTP/1.1\r\nHost: x\r\n\r\n", "G", "ET /admin HTTP/1.1\r\nHost: x\r\n\r\n"},
			[]served{{method: "GET", target: "/first"}, {method: "GET", target: "/admin"}}},
		{[]string{"GET /first HTTP/1.1\r\nHost: x\r\n\r\n", "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n", "GET /y HTTP/1.1\r\nHost: x\r\n\r\n"},
			[]served{{method: "GET", target: "/first"}}},
	} {
		var stream string
		var sizes []int
		for _, p := range c.pieces {
			stream += p
			sizes = append(sizes, len(p))
		}
		got, _ := serve(t, NewConn(&chunkConn{in: []byte(stream), sizes: sizes}, Limits{}, nil))
		if len(got) < len(c.want) {
			t.Fatalf("%q: served %+v", c.pieces, got)
		}
		for i := range c.want {
			if got[i] != c.want[i] {
				t.Errorf("%q: request %d = %+v, want %+v", c.pieces, i, got[i], c.want[i])
			}
		}
		if len(got) > len(c.want) && got[len(c.want)].rejection == nil {
			t.Errorf("%q: served %+v after the heads it should have, without a refusal", c.pieces, got[len(c.want)])
		}
	}
}

func TestConnRefusedHeadAfterAGoodOne(t *testing.T) {
	stream := "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n" +
		"POST /smuggle HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n"
	g := NewConn(&chunkConn{in: []byte(stream)}, Limits{}, nil)
	got, _ := serve(t, g)
	if len(got) != 2 || got[0].target != "/ok" || got[0].rejection != nil {
		t.Fatalf("served %+v", got)
	}
	rj := got[1].rejection
	if rj == nil || rj.Status != 400 || rj.Details != DetailsChunkedCL || rj.Method != "POST" || rj.Target != "/smuggle" {
		t.Fatalf("second request: %+v rejection %+v", got[1], rj)
	}
}

// A Conn checks heads in place, in buffers other connections reuse; a rejection keeps
// copies of its request line.
func TestConnRejectionOutlivesItsBuffer(t *testing.T) {
	stream := "POST /smuggle HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
	g := NewConn(&chunkConn{in: []byte(stream)}, Limits{}, nil)
	got, _ := serve(t, g)
	if len(got) != 1 || got[0].rejection == nil {
		t.Fatalf("served %+v", got)
	}
	rj := got[0].rejection
	_, _ = g.Read(make([]byte, 10)) // the connection gives its buffers back
	for range 20 {                  // other connections take them and fill them
		other := strings.Repeat("GET /zzzzzzzzzzzzzzzzz HTTP/1.1\r\nHost: y\r\n\r\n", 8)
		_, _ = serve(t, NewConn(&chunkConn{in: []byte(other)}, Limits{}, nil))
	}
	if rj.Method != "POST" || rj.Target != "/smuggle" || rj.Proto != "HTTP/1.1" {
		t.Errorf("rejection's request line changed: %q %q %q", rj.Method, rj.Target, rj.Proto)
	}
}

func TestConnBrokenChunks(t *testing.T) {
	for _, c := range []struct{ name, body, why string }{
		{"size not hex", "zz\r\nabc\r\n0\r\n\r\n", "not hexadecimal"},
		{"data longer than size", "3\r\nabcdef\r\n0\r\n\r\n", "not followed by CRLF"},
		{"bare LF line", "3\nabc\r\n0\r\n\r\n", "without CR"},
		{"space before extension", "3 ;x\r\nabc\r\n0\r\n\r\n", "not hexadecimal"},
		{"folded trailer", "0\r\nX-T: 1\r\n 2\r\n\r\n", "folding"},
		{"size overflow", "fffffffffffffffff\r\n", "too large"},
	} {
		t.Run(c.name, func(t *testing.T) {
			stream := "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + c.body + "GET /next HTTP/1.1\r\nHost: x\r\n\r\n"
			g := NewConn(&chunkConn{in: []byte(stream)}, Limits{}, nil)
			got, end := serve(t, g)
			if end == nil || len(got) != 1 || !strings.Contains(got[0].bodyErr, c.why) {
				t.Fatalf("served %+v, end %v; want the body to fail with %q", got, end, c.why)
			}
		})
	}
}

func TestConnHeadTooLargeBeforeItEnds(t *testing.T) {
	// A head that never ends is refused once it passes the limit, without waiting.
	stream := "GET /x HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 100<<10)
	g := NewConn(&chunkConn{in: []byte(stream), sizes: []int{4096}}, Limits{}, nil)
	got, _ := serve(t, g)
	if len(got) != 1 || got[0].rejection == nil || got[0].rejection.Status != 431 || got[0].rejection.Target != "/x" {
		t.Fatalf("served %+v", got)
	}
}

func TestConnPassThrough(t *testing.T) {
	for _, c := range []struct{ name, stream, after string }{
		{"h2 prior knowledge", string(h2Preface) + "\x00\x00\x00\x04", string(h2Preface) + "\x00\x00\x00\x04"},
		{"websocket", "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello", "\x81\x05hello"},
		{"connect", "CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\nPGDATA", "PGDATA"},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := NewConn(&chunkConn{in: []byte(c.stream), sizes: []int{5}}, Limits{}, nil)
			all, err := io.ReadAll(g)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasSuffix(all, []byte(c.after)) {
				t.Fatalf("read %q", all)
			}
		})
	}
}

func FuzzConn(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		f.Add([]byte(s), uint8(0))
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, b []byte, piece uint8) {
		if bytes.HasPrefix(b, h2Preface[:min(len(b), len(h2Preface))]) {
			return // HTTP/2 bytes are passed through, not parsed here
		}
		var sizes []int
		if piece > 0 {
			sizes = []int{int(piece)}
		}
		cc := &chunkConn{in: b, sizes: sizes}
		g := NewConn(cc, Limits{MaxHeadersCount: 20, MaxRequestHeadersKB: 1}, nil)
		got, end := serve(t, g)
		if g.Upgraded() || cc.eof {
			return // after an upgrade anything goes; a truncated stream may end anywhere
		}
		// net/http never fails on a head Conn handed on: the stream ends cleanly, or in a
		// body Conn broke on purpose.
		if end != nil && (len(got) == 0 || got[len(got)-1].bodyErr == "") {
			t.Fatalf("net/http failed with %v after %+v on %q", end, got, b)
		}
		for i, s := range got {
			if s.rejection != nil && i != len(got)-1 {
				t.Fatalf("a request served after a rejection: %+v", got)
			}
		}
	})
}
