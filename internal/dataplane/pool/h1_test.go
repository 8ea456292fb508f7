package pool

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/reqctx"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/testutil"
	"github.com/lucid-mesh/lucid/internal/testutil/upstreamtest"
)

// Tests of the own HTTP/1.1 path, on 127.0.92.0/24.

func listen92(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.92.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// h1Server is a real net/http server on 127.0.92.1.
func h1Server(t testing.TB, h http.HandlerFunc, idle time.Duration) string {
	t.Helper()
	ln := listen92(t)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: idle}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// rawServer runs serve for each connection (n counts connections from 0).
func rawServer(t testing.TB, serve func(c net.Conn, br *bufio.Reader, n int)) string {
	t.Helper()
	return upstreamtest.Serve(t, "127.0.92.1", func(c net.Conn, n int) { serve(c, bufio.NewReader(c), n) })
}

func h1Cluster(name string) *resource.Cluster {
	return &resource.Cluster{Name: name, ConnectTimeout: time.Second, IdleTimeout: time.Hour}
}

type h1Result struct {
	code    int
	body    string
	trailer http.Header
	header  http.Header
}

func do(t *testing.T, p *Pool, addr string, req *http.Request, cb Counters) (h1Result, error) {
	t.Helper()
	resp, err := p.RoundTrip(req, addr, cb, nil)
	if err != nil {
		return h1Result{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return h1Result{code: resp.StatusCode}, err
	}
	return h1Result{code: resp.StatusCode, body: string(b), trailer: resp.Trailer, header: resp.Header}, nil
}

func newReq(t *testing.T, method, target string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, "http://svc"+target, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "svc"
	req.Header = http.Header{}
	return req
}

func TestH1ProtocolAgainstNetHTTP(t *testing.T) {
	var conns atomic.Int64
	ln := listen92(t)
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, ConnState: func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}}
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/echo":
			w.Header().Set("X-TE", strings.Join(r.TransferEncoding, ","))
			w.Header().Set("X-Trailer", r.Trailer.Get("X-Sum"))
			w.Header().Set("X-UA", r.Header.Get("User-Agent"))
			_, _ = fmt.Fprintf(w, "%s %s %d %s", r.Method, r.Host, r.ContentLength, b)
		case "/chunked":
			w.Header().Set("Trailer", "X-Checksum")
			for i := range 3 {
				_, _ = fmt.Fprintf(w, "part%d;", i)
				w.(http.Flusher).Flush()
			}
			w.Header().Set("X-Checksum", "abc")
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.WriteHeader(http.StatusNotModified)
		case "/103":
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			_, _ = io.WriteString(w, "after hints")
		case "/big":
			_, _ = io.WriteString(w, strings.Repeat("b", 1<<20))
		}
	})
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	addr := ln.Addr().String()
	p := newSet(t, h1Cluster("c")).Get("c")

	cases := []struct {
		name    string
		req     func() *http.Request
		code    int
		body    string
		check   func(t *testing.T, r h1Result)
		newConn bool
	}{
		{name: "GET", req: func() *http.Request { return newReq(t, "GET", "/echo", nil) },
			code: 200, body: "GET svc 0 ", newConn: true,
			check: func(t *testing.T, r h1Result) {
				t.Helper()
				if r.header.Get("X-UA") != "" {
					t.Errorf("a User-Agent was added: %q", r.header.Get("X-UA"))
				}
			}},
		{name: "POST with length", req: func() *http.Request {
			return newReq(t, "POST", "/echo", strings.NewReader("hello"))
		}, code: 200, body: "POST svc 5 hello"},
		{name: "POST chunked with trailer", req: func() *http.Request {
			r := newReq(t, "POST", "/echo", io.MultiReader(strings.NewReader("a"), strings.NewReader("b")))
			r.ContentLength = -1
			r.Trailer = http.Header{"X-Sum": {"42"}}
			return r
		}, code: 200, body: "POST svc -1 ab", check: func(t *testing.T, r h1Result) {
			t.Helper()
			if r.header.Get("X-TE") != "chunked" || r.header.Get("X-Trailer") != "42" {
				t.Errorf("upstream saw TE %q trailer %q", r.header.Get("X-TE"), r.header.Get("X-Trailer"))
			}
		}},
		{name: "POST without body has Content-Length 0", req: func() *http.Request { return newReq(t, "POST", "/echo", nil) },
			code: 200, body: "POST svc 0 "},
		{name: "large request body (written concurrently)", req: func() *http.Request {
			return newReq(t, "PUT", "/echo", strings.NewReader(strings.Repeat("x", 200<<10)))
		}, code: 200, body: "PUT svc 204800 " + strings.Repeat("x", 200<<10)},
		{name: "chunked response with trailers", req: func() *http.Request { return newReq(t, "GET", "/chunked", nil) },
			code: 200, body: "part0;part1;part2;", check: func(t *testing.T, r h1Result) {
				t.Helper()
				if r.trailer.Get("X-Checksum") != "abc" {
					t.Errorf("trailer %v", r.trailer)
				}
			}},
		{name: "HEAD has no body", req: func() *http.Request { return newReq(t, "HEAD", "/big", nil) }, code: 200},
		{name: "204", req: func() *http.Request { return newReq(t, "GET", "/204", nil) }, code: 204},
		{name: "304", req: func() *http.Request { return newReq(t, "GET", "/304", nil) }, code: 304},
		{name: "1xx skipped", req: func() *http.Request { return newReq(t, "GET", "/103", nil) }, code: 200, body: "after hints"},
		{name: "1 MiB body", req: func() *http.Request { return newReq(t, "GET", "/big", nil) }, code: 200, body: strings.Repeat("b", 1<<20)},
		{name: "Expect 100-continue sends the body directly", req: func() *http.Request {
			r := newReq(t, "POST", "/echo", strings.NewReader("cont"))
			r.Header.Set("Expect", "100-continue")
			return r
		}, code: 200, body: "POST svc 4 cont"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := conns.Load()
			r, err := do(t, p, addr, tc.req(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if r.code != tc.code || r.body != tc.body {
				t.Fatalf("got %d %.60q, want %d %.60q", r.code, r.body, tc.code, tc.body)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
			if !tc.newConn && conns.Load() != before {
				t.Errorf("a new connection was made; the previous one should have been reused")
			}
		})
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for sequential requests, want 1", n)
	}
}

// TestH1ServerClosedIdleIsNotReused: a connection the server closed while idle (FIN) is
// never used again, with and without a Keep-Alive header.
func TestH1ServerClosedIdleIsNotReused(t *testing.T) {
	var conns atomic.Int64
	addr := rawServer(t, func(c net.Conn, br *bufio.Reader, n int) {
		conns.Add(1)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		// close right after the response, without Connection: close
	})
	p := newSet(t, h1Cluster("c")).Get("c")
	for i := range 5 {
		// wait for the FIN of the previous connection to arrive
		if i > 0 {
			testutil.Eventually(t, 5*time.Second, "condition", func() bool { return closedIdle(p) })
		}
		r, err := do(t, p, addr, newReq(t, "POST", "/", strings.NewReader("x")), nil)
		if err != nil || r.body != "ok" {
			t.Fatalf("request %d: %v %q", i, err, r.body)
		}
	}
	if conns.Load() != 5 {
		t.Fatalf("%d connections, want 5", conns.Load())
	}
}

// closedIdle says whether every idle connection of p has seen its peer close.
func closedIdle(p *Pool) bool {
	p.h1.mu.Lock()
	defer p.h1.mu.Unlock()
	for _, l := range p.h1.idle {
		for _, c := range l.conns {
			if c.alive(time.Now()) {
				return false
			}
		}
	}
	return true
}

func TestParseKeepAlive(t *testing.T) {
	cases := []struct {
		in      string
		life    time.Duration
		maxReq  int
		hasLife bool
	}{
		{"timeout=5", 4 * time.Second, -1, true},
		{"timeout=5, max=100", 4 * time.Second, 100, true},
		{"timeout=1", 800 * time.Millisecond, -1, true},
		{"timeout=2", 1600 * time.Millisecond, -1, true},
		{"timeout=60", 58 * time.Second, -1, true},
		{"max=0", 0, 0, false},
		{`Timeout="3"`, 2400 * time.Millisecond, -1, true},
		{"timeout=0", 0, -1, true},
		{"garbage", 0, -1, false},
		{"timeout=x", 0, -1, false},
	}
	for _, c := range cases {
		timeout, maxReq, ok := parseKeepAlive(c.in)
		life := keepAliveLife(timeout)
		if life != c.life || maxReq != c.maxReq || ok != c.hasLife {
			t.Errorf("%q: got %v %d %v, want %v %d %v", c.in, life, maxReq, ok, c.life, c.maxReq, c.hasLife)
		}
	}
}

func FuzzParseKeepAlive(f *testing.F) {
	for _, s := range []string{"timeout=5", "timeout=5, max=100", `timeout="1.5"`, "max=0", ",,=,", "timeout=1e300"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		timeout, _, ok := parseKeepAlive(s)
		if life := keepAliveLife(timeout); ok && (life >= 1e6*time.Second || life < 0 || life > timeout) {
			t.Fatalf("life %v from %q", life, s)
		}
	})
}

// TestH1KeepAliveTimeoutBoundsReuse: "Keep-Alive: timeout=1" makes the pool give the
// connection up before the server does (0.8 s here), so a request 0.9 s later gets a new
// connection instead of racing the server's close.
func TestH1KeepAliveTimeoutBoundsReuse(t *testing.T) {
	var conns atomic.Int64
	addr := rawServer(t, func(c net.Conn, br *bufio.Reader, n int) {
		conns.Add(1)
		for {
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	p := newSet(t, h1Cluster("c")).Get("c")
	for i, gap := range []time.Duration{0, 100 * time.Millisecond, 900 * time.Millisecond} {
		time.Sleep(gap)
		if _, err := do(t, p, addr, newReq(t, "GET", "/", nil), nil); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if conns.Load() != 2 {
		t.Fatalf("%d connections, want 2 (reuse after 100 ms, not after 900 ms)", conns.Load())
	}
}

// TestH1ResetClassification: failures before any response byte on a reused connection are
// ResetErrors with Reused set; bytes already received set ResponseStarted.
func TestH1ResetClassification(t *testing.T) {
	t.Run("reset after reading the request on a reused connection", func(t *testing.T) {
		addr := rawServer(t, func(c net.Conn, br *bufio.Reader, n int) {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			_ = c.(*net.TCPConn).SetLinger(0) // RST
		})
		p := newSet(t, h1Cluster("c")).Get("c")
		if _, err := do(t, p, addr, newReq(t, "GET", "/", nil), nil); err != nil {
			t.Fatal(err)
		}
		_, err := do(t, p, addr, newReq(t, "POST", "/", strings.NewReader("x")), nil)
		var re *ResetError
		if !errors.As(err, &re) || !re.Reused || re.ResponseStarted || re.BeforeHeaders || re.Reason != ReasonConnectionTermination {
			t.Fatalf("got %#v", err)
		}
	})
	t.Run("reset mid-response", func(t *testing.T) {
		addr := rawServer(t, func(c net.Conn, br *bufio.Reader, n int) {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
			_ = c.(*net.TCPConn).SetLinger(0)
		})
		p := newSet(t, h1Cluster("c")).Get("c")
		r, err := do(t, p, addr, newReq(t, "GET", "/", nil), nil)
		if err == nil || r.code != 200 {
			t.Fatalf("got %d %v, want a body error after 200", r.code, err)
		}
	})
	t.Run("malformed response is a protocol error", func(t *testing.T) {
		addr := rawServer(t, func(c net.Conn, br *bufio.Reader, n int) {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			_, _ = io.WriteString(c, "HTTP/1.1 abc OK\r\n\r\n")
		})
		p := newSet(t, h1Cluster("c")).Get("c")
		_, err := do(t, p, addr, newReq(t, "GET", "/", nil), nil)
		var re *ResetError
		if !errors.As(err, &re) || re.Reason != ReasonProtocolError || !re.ResponseStarted {
			t.Fatalf("got %#v", err)
		}
	})
}

// stalling is an upstream that reads a request and never answers.
func stalling(t *testing.T) string {
	t.Helper()
	release := make(chan struct{})
	addr := rawServer(t, func(c net.Conn, br *bufio.Reader, n int) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		<-release
	})
	t.Cleanup(func() { close(release) })
	return addr
}

func TestH1Cancellation(t *testing.T) {
	addr := stalling(t)
	p := newSet(t, h1Cluster("c")).Get("c")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req := newReq(t, "GET", "/", nil).WithContext(ctx)
	resp, err := p.RoundTrip(req, addr, nil, nil)
	if err == nil {
		_ = resp.Body.Close()
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the context's deadline", err)
	}
}

// A request whose context is a reqctx.Ctx (as forward's attempts are) is interrupted
// when it is cancelled, and fails with its cause; one whose context has ended fails so.
func TestH1CancellationReqctx(t *testing.T) {
	addr := stalling(t)
	p := newSet(t, h1Cluster("c")).Get("c")
	errGone := errors.New("endpoint left the cluster")
	rc := reqctx.New(context.Background())
	rc.CancelAfter(50*time.Millisecond, errGone)
	resp, err := p.RoundTrip(newReq(t, "GET", "/", nil).WithContext(rc), addr, nil, nil)
	if err == nil {
		_ = resp.Body.Close()
	}
	if !errors.Is(err, errGone) {
		t.Fatalf("got %v, want the context's cause", err)
	}
	ended := reqctx.New(context.Background())
	ended.Cancel(errGone)
	if _, err := p.RoundTrip(newReq(t, "GET", "/", nil).WithContext(ended), addr, nil, nil); !errors.Is(err, errGone) { //nolint:bodyclose // no response
		t.Fatalf("an ended context: got %v, want its cause", err)
	}
}

// TestH1EarlyResponse: the upstream answers without reading a large body and closes; the
// proxy gets the answer instead of deadlocking, and does not reuse the connection.
func TestH1EarlyResponse(t *testing.T) {
	addr := rawServer(t, func(c net.Conn, br *bufio.Reader, n int) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbig")
	})
	p := newSet(t, h1Cluster("c")).Get("c")
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { _, _ = pw.Write([]byte("start")) }() // then the body stalls
	req := newReq(t, "POST", "/", pr)
	req.ContentLength = -1
	r, err := do(t, p, addr, req, nil)
	if err != nil || r.code != 413 || r.body != "big" {
		t.Fatalf("got %d %q %v", r.code, r.body, err)
	}
}

func TestH1MaxConnectionsAndPendingOverflow(t *testing.T) {
	release := make(chan struct{})
	var inHandler sync.WaitGroup
	addr := h1Server(t, func(w http.ResponseWriter, r *http.Request) {
		inHandler.Done()
		<-release
		_, _ = io.WriteString(w, "ok")
	}, 0)
	c := h1Cluster("c")
	c.MaxConnections, c.MaxPendingRequests = 1, 1
	p := newSet(t, c).Get("c")
	cb := &pendingCounts{}

	inHandler.Add(1)
	first := make(chan error, 1)
	go func() { _, err := do(t, p, addr, newReq(t, "GET", "/1", nil), cb); first <- err }()
	inHandler.Wait()
	second := make(chan error, 1)
	go func() { _, err := do(t, p, addr, newReq(t, "GET", "/2", nil), cb); second <- err }()
	testutil.Eventually(t, 5*time.Second, "condition", func() bool { return cb.active.Load() == 1 })
	_, err := do(t, p, addr, newReq(t, "GET", "/3", nil), cb)
	var oe *OverflowError
	if !errors.As(err, &oe) || oe.Limit != "max_pending_requests" {
		t.Fatalf("third request: %v, want max_pending_requests overflow", err)
	}
	inHandler.Add(1)
	release <- struct{}{}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	inHandler.Wait()
	release <- struct{}{}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	if cb.total.Load() != 1 || cb.active.Load() != 0 {
		t.Fatalf("pending total %d active %d", cb.total.Load(), cb.active.Load())
	}
}

type pendingCounts struct {
	counts
	total, active atomic.Int64
}

func (c *pendingCounts) PendingStarted() { c.total.Add(1); c.active.Add(1) }
func (c *pendingCounts) PendingEnded()   { c.active.Add(-1) }

func TestH1IdleReaperClosesDeadConnections(t *testing.T) {
	old := H1ReapInterval
	H1ReapInterval = 10 * time.Millisecond
	defer func() { H1ReapInterval = old }()
	addr := h1Server(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }, 50*time.Millisecond)
	p := newSet(t, h1Cluster("c")).Get("c")
	cb := &counts{}
	if _, err := do(t, p, addr, newReq(t, "GET", "/", nil), cb); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "condition", func() bool { return cb.closed.Load() == 1 })
	p.h1.mu.Lock()
	open := p.h1.open
	p.h1.mu.Unlock()
	if open != 0 {
		t.Fatalf("%d connections still counted open", open)
	}
}

func TestH1Upgrade(t *testing.T) {
	addr := rawServer(t, func(c net.Conn, br *bufio.Reader, n int) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		_, _ = io.Copy(c, br)
	})
	p := newSet(t, h1Cluster("c")).Get("c")
	req := newReq(t, "GET", "/", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "echo")
	resp, err := p.RoundTrip(req, addr, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	rw, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		t.Fatalf("101 body is %T, not an io.ReadWriteCloser", resp.Body)
	}
	defer rw.Close()
	if _, err := io.WriteString(rw, "ping"); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	if _, err := io.ReadFull(rw, b); err != nil || string(b) != "ping" {
		t.Fatalf("echo %q %v", b, err)
	}
}

func BenchmarkH1RoundTrip(b *testing.B) {
	addr := h1Server(b, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }, 0)
	s := NewSet(nil)
	s.Update(map[string]*resource.Cluster{"c": h1Cluster("c")})
	defer s.Close()
	p := s.Get("c")
	b.ReportAllocs()
	for range b.N {
		req, _ := http.NewRequest("GET", "http://svc/", nil)
		resp, err := p.RoundTrip(req, addr, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
}

// The idle lists are found by address (and the last one used without a lookup): requests
// alternating between two hosts each reuse their own host's connection, and a host whose
// idle connections were closed (it left the cluster) gets a list of its own again that
// the pool still knows (a later close reaches the new connection).
func TestIdleListsByAddress(t *testing.T) {
	var conns [2]atomic.Int64
	serve := func(i int) func(c net.Conn, br *bufio.Reader, n int) {
		return func(c net.Conn, br *bufio.Reader, n int) {
			conns[i].Add(1)
			for {
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
					return
				}
			}
		}
	}
	addrs := [2]string{rawServer(t, serve(0)), rawServer(t, serve(1))}
	p := newSet(t, h1Cluster("c")).Get("c")
	get := func(i int) {
		t.Helper()
		if r, err := do(t, p, addrs[i], newReq(t, "GET", "/", nil), nil); err != nil || r.body != "ok" {
			t.Fatalf("host %d: %v %q", i, err, r.body)
		}
	}
	for range 3 {
		get(0)
		get(1)
	}
	if conns[0].Load() != 1 || conns[1].Load() != 1 {
		t.Fatalf("connections %d and %d, want one to each host, reused", conns[0].Load(), conns[1].Load())
	}
	p.h1.closeIdleTo([]string{addrs[1]}) // the last host used
	get(1)
	get(1)
	if conns[1].Load() != 2 {
		t.Fatalf("%d connections to the host whose idle ones were closed, want 2", conns[1].Load())
	}
	p.h1.mu.Lock()
	il := p.h1.idle[addrs[1]]
	n := 0
	if il != nil {
		n = len(il.conns)
	}
	p.h1.mu.Unlock()
	if n != 1 {
		t.Fatalf("the pool's idle list for the host holds %d connections, want the new one", n)
	}
}
