package h1server_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lucid-mesh/lucid/internal/dataplane/h1server"
	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// countingListener counts the Write calls on its connections (one per response is the
// loop's promise; the connections have no SyscallConn, so nothing bypasses the count).
type countingListener struct {
	net.Listener
	writes atomic.Int64
}

type countingConn struct {
	net.Conn
	l *countingListener
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.l.writes.Add(1)
	return c.Conn.Write(p)
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, l: l}, nil
}

// serve starts a server on 127.0.0.1 with h; the returned function dials it.
func serve(t *testing.T, s *h1server.Server) (*countingListener, func() net.Conn) {
	t.Helper()
	var cl *countingListener
	dial := serveOn(t, s, func(ln net.Listener) net.Listener {
		cl = &countingListener{Listener: ln}
		return cl
	})
	return cl, dial
}

// serveOn starts a server on 127.0.0.1 with h, accepting through wrap(listener); the
// returned function dials it.
func serveOn(t *testing.T, s *h1server.Server, wrap func(net.Listener) net.Listener) func() net.Conn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wl := wrap(ln)
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(wl) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			_ = s.Close()
		}
		<-done
	})
	return func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		return c
	}
}

// answer is what a client read of one response.
type answer struct {
	StatusCode       int
	Header, Trailer  http.Header
	ContentLength    int64
	TransferEncoding []string
	Close            bool
}

func readResponse(t *testing.T, br *bufio.Reader, method string) (answer, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, resp.Trailer, resp.ContentLength, resp.TransferEncoding, resp.Close}, string(b)
}

func echo() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Method", r.Method)
		w.Header().Set("X-Host", r.Host)
		w.Header().Set("X-Uri", r.RequestURI)
		for k, v := range r.Trailer {
			w.Header().Set("X-Trailer-"+k, strings.Join(v, ","))
		}
		_, _ = w.Write(b)
	})
}

// Pipelined requests in one segment are answered in order, each in one write with its
// Content-Length, on one connection.
func TestPipelinedInOrderOneWriteEach(t *testing.T) {
	l, dial := serve(t, &h1server.Server{Handler: echo()})
	c := dial()
	_, _ = io.WriteString(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"+
		"POST /b HTTP/1.1\r\nHost: y\r\nContent-Length: 5\r\n\r\nhello"+
		"POST /c HTTP/1.1\r\nHost: z\r\nTransfer-Encoding: chunked\r\nTrailer: T1\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nT1: v1\r\n\r\n")
	br := bufio.NewReader(c)
	for _, want := range []struct{ uri, host, body, trailer string }{
		{"/a", "x", "", ""}, {"/b", "y", "hello", ""}, {"/c", "z", "abcde", "v1"},
	} {
		resp, body := readResponse(t, br, "GET")
		if resp.StatusCode != 200 || resp.Header.Get("X-Uri") != want.uri || resp.Header.Get("X-Host") != want.host ||
			body != want.body || resp.Header.Get("X-Trailer-T1") != want.trailer || resp.ContentLength != int64(len(want.body)) {
			t.Fatalf("%s: status %d, headers %v, body %q, length %d", want.uri, resp.StatusCode, resp.Header, body, resp.ContentLength)
		}
		if resp.Header.Get("Date") == "" {
			t.Fatalf("%s: no Date header", want.uri)
		}
	}
	if n := l.writes.Load(); n != 3 {
		t.Fatalf("%d writes for 3 responses, want 3", n)
	}
}

// The connection's response is reused for its next request: nothing of one answer (its
// fields, its status, a trailer, a connection close it did not ask for) carries over.
func TestNextAnswerStartsClean(t *testing.T) {
	_, dial := serve(t, &h1server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/first" {
			w.Header().Set("X-First", "1")
			w.Header().Set("Trailer", "X-Sum")
			w.WriteHeader(http.StatusAccepted)
			_, _ = io.WriteString(w, "first")
			w.Header().Set("X-Sum", "9")
			return
		}
		_, _ = io.WriteString(w, "second")
	})})
	c := dial()
	_, _ = io.WriteString(c, "GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	first, body := readResponse(t, br, "GET")
	if first.StatusCode != http.StatusAccepted || first.Header.Get("X-First") != "1" || first.Trailer.Get("X-Sum") != "9" || body != "first" {
		t.Fatalf("first: %+v %q", first, body)
	}
	second, body := readResponse(t, br, "GET")
	if second.StatusCode != 200 || second.Header.Get("X-First") != "" || second.Header.Get("Trailer") != "" ||
		second.ContentLength != 6 || second.Close || body != "second" {
		t.Fatalf("second answer carries the first's state: %+v %q", second, body)
	}
}

// A streamed answer (flushed, no length) is chunked and carries its trailers.
func TestStreamedChunkedWithTrailers(t *testing.T) {
	_, dial := serve(t, &h1server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Trailer", "Grpc-Status")
		_, _ = io.WriteString(w, "part1,")
		w.(http.Flusher).Flush()
		_, _ = io.WriteString(w, "part2")
		w.Header().Set("Grpc-Status", "0")
		w.Header().Set(http.TrailerPrefix+"X-Late", "yes")
	})})
	c := dial()
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	resp, body := readResponse(t, br, "GET")
	if body != "part1,part2" || len(resp.TransferEncoding) == 0 || resp.Trailer.Get("Grpc-Status") != "0" || resp.Trailer.Get("X-Late") != "yes" {
		t.Fatalf("body %q, transfer-encoding %v, trailers %v", body, resp.TransferEncoding, resp.Trailer)
	}
}

// Expect: 100-continue gets its interim answer when the handler reads the body, not
// before; a handler that answers without reading closes the connection instead.
func TestExpectContinue(t *testing.T) {
	_, dial := serve(t, &h1server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/refuse" {
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			return
		}
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(b)
	})})
	c := dial()
	_, _ = io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
	br := bufio.NewReader(c)
	line, _ := br.ReadString('\n')
	if line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("first line %q, want 100 Continue", line)
	}
	_, _ = br.ReadString('\n')
	_, _ = io.WriteString(c, "body")
	if _, body := readResponse(t, br, "POST"); body != "body" {
		t.Fatalf("body %q", body)
	}
	_, _ = io.WriteString(c, "POST /refuse HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
	resp, _ := readResponse(t, br, "POST")
	if resp.StatusCode != 413 || !resp.Close {
		t.Fatalf("status %d, close %v: want 413 and the connection closed", resp.StatusCode, resp.Close)
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the refusal: %v, want EOF", err)
	}
}

// HTTP/1.0 closes unless it asks for keep-alive; Connection: close closes.
func TestConnectionClose(t *testing.T) {
	_, dial := serve(t, &h1server.Server{Handler: echo()})
	for _, tc := range []struct {
		name, req string
		close     bool
	}{
		{"http10", "GET / HTTP/1.0\r\n\r\n", true},
		{"http10 keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", false},
		{"close", "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial()
			_, _ = io.WriteString(c, tc.req)
			br := bufio.NewReader(c)
			resp, _ := readResponse(t, br, "GET")
			if resp.Close != tc.close {
				t.Fatalf("close %v, want %v (headers %v)", resp.Close, tc.close, resp.Header)
			}
			if tc.close {
				if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
					t.Fatalf("connection open after a closing answer: %v", err)
				}
			}
		})
	}
}

// Malformed heads are answered 400 and the connection closes; a head over the limit 431.
func TestMalformed(t *testing.T) {
	_, dial := serve(t, &h1server.Server{Handler: echo(), MaxHeaderBytes: 4096})
	for _, tc := range []struct {
		name, req string
		status    int
	}{
		{"no version", "GET /\r\n\r\n", 400},
		{"bad header", "GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n", 400},
		{"te and cl", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"no host", "GET / HTTP/1.1\r\n\r\n", 400},
		{"too large", "GET / HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("a", 5000), 431},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial()
			_, _ = io.WriteString(c, tc.req)
			br := bufio.NewReader(c)
			resp, _ := readResponse(t, br, "GET")
			if resp.StatusCode != tc.status || !resp.Close {
				t.Fatalf("status %d close %v, want %d and close", resp.StatusCode, resp.Close, tc.status)
			}
		})
	}
}

// A bad chunked body fails the handler's read.
func TestBrokenChunkedBody(t *testing.T) {
	got := make(chan error, 1)
	_, dial := serve(t, &h1server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		got <- err
		w.WriteHeader(400)
	})})
	c := dial()
	_, _ = io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX")
	if err := <-got; err == nil {
		t.Fatal("a chunk longer than its size was read without error")
	}
}

// Hijack hands over the connection with the bytes read past the head; the loop lets go.
func TestHijackKeepsBufferedBytes(t *testing.T) {
	for _, way := range bothWays {
		t.Run(way.name, func(t *testing.T) {
			dial := way.serve(t, &h1server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				takeOverAndEcho(t, w, 5)
			})})
			c := dial()
			_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\nhel")
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 101 {
				t.Fatalf("status %d, want 101", resp.StatusCode)
			}
			_, _ = io.WriteString(c, "lo")
			b := make([]byte, 5)
			if _, err := io.ReadFull(br, b); err != nil || string(b) != "hello" {
				t.Fatalf("tunnel echoed %q (%v)", b, err)
			}
		})
	}
}

// takeOverAndEcho is an upgrade's handler: it takes the connection over, answers 101 and
// echoes the first n bytes the client sends through it.
func takeOverAndEcho(t *testing.T, w http.ResponseWriter, n int) {
	t.Helper()
	c, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		t.Error(err)
		return
	}
	defer c.Close()
	_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n")
	b := make([]byte, n)
	_, _ = io.ReadFull(c, b)
	_, _ = c.Write(b)
}

// A handler that aborts (http.ErrAbortHandler) resets the connection mid-answer.
func TestAbortHandlerClosesConnection(t *testing.T) {
	_, dial := serve(t, &h1server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	})})
	c := dial()
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Fatal("an aborted chunked answer read as complete")
	}
}

// The idle timeout closes a connection that sends nothing, and the header timeout one
// that starts a head without ending it: as its first request, or after a request it was
// answered (on the socket such a request is served inside the wait for the next, which
// keeps the same deadlines).
func TestTimeouts(t *testing.T) {
	ways := append(slices.Clone(bothWays), serveWay{"socket unchecked", serveRaw})
	const full = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	for _, way := range ways {
		t.Run(way.name, func(t *testing.T) {
			idle := way.serve(t, &h1server.Server{Handler: echo(), IdleTimeout: 300 * time.Millisecond, ReadHeaderTimeout: time.Hour})
			head := way.serve(t, &h1server.Server{Handler: echo(), IdleTimeout: time.Hour, ReadHeaderTimeout: 300 * time.Millisecond})
			for _, tc := range []struct {
				dial func() net.Conn
				send string
			}{{idle, ""}, {idle, full}, {head, "GET / HTTP/1.1\r\n"}, {head, full + "GET / HTTP/1.1\r\n"}} {
				c := tc.dial()
				_, _ = io.WriteString(c, tc.send)
				br := bufio.NewReader(c)
				if strings.HasPrefix(tc.send, full) {
					if resp, _ := readResponse(t, br, "GET"); resp.StatusCode != 200 {
						t.Fatalf("sent %q: status %d", tc.send, resp.StatusCode)
					}
				}
				start := time.Now()
				_ = c.SetReadDeadline(start.Add(10 * time.Second))
				if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
					t.Fatalf("sent %q: read %v, want EOF", tc.send, err)
				}
				if d := time.Since(start); d > 5*time.Second {
					t.Fatalf("sent %q: closed after %v", tc.send, d)
				}
			}
		})
	}
}

// HTTP/2 prior knowledge is handed over with the bytes already read, and the context.
func TestHTTP2Handoff(t *testing.T) {
	got := make(chan []byte, 1)
	s := &h1server.Server{Handler: echo(), HTTP2: func(c net.Conn) {
		defer c.Close()
		b := make([]byte, 24)
		_, _ = io.ReadFull(c, b)
		if h, ok := c.(*h1server.Handoff); !ok || h.Context() == nil {
			t.Error("handed over without the context")
		}
		got <- b
	}}
	_, dial := serve(t, s)
	c := dial()
	_, _ = io.WriteString(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	if b := <-got; string(b) != "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" {
		t.Fatalf("HTTP/2 server read %q", b)
	}
}

// A client that goes away while a slow request is served cancels the request's context
// (as net/http's background read does); a pipelined request sent meanwhile is kept. On the
// socket a request without a body is served inside the wait for the next one, and the
// reaper peeks rather than reads: the same holds there.
func TestClientGoneCancelsSlowRequest(t *testing.T) {
	for _, way := range bothWays {
		t.Run(way.name, func(t *testing.T) {
			cancelled := make(chan struct{})
			dial := way.serve(t, &h1server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/slow":
					select {
					case <-r.Context().Done():
						close(cancelled)
					case <-time.After(10 * time.Second):
					}
				case "/wait":
					time.Sleep(700 * time.Millisecond) // the watch starts, then sees the next request
				}
				_, _ = io.WriteString(w, r.URL.Path)
			})})
			c := dial()
			_, _ = io.WriteString(c, "GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
			time.Sleep(400 * time.Millisecond)
			_, _ = io.WriteString(c, "GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
			br := bufio.NewReader(c)
			for _, want := range []string{"/wait", "/next"} {
				if _, body := readResponse(t, br, "GET"); body != want {
					t.Fatalf("answer %q, want %q", body, want)
				}
			}
			c2 := dial()
			_, _ = io.WriteString(c2, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
			time.Sleep(100 * time.Millisecond)
			_ = c2.Close()
			select {
			case <-cancelled:
			case <-time.After(5 * time.Second):
				t.Fatal("the request's context was not cancelled after its client went away")
			}
		})
	}
}

// A handler may adopt a header map as its response's before setting anything: its fields
// go out, the map stays the handler's for trailers, and the connection's next answer
// starts with its own empty map. Once a field is set, adopting is refused. The map's
// owner is told to recycle it once the answer is written, and only when the handler
// released its request.
func TestAdoptHeader(t *testing.T) {
	type adopter interface {
		AdoptHeader(http.Header, interface{ Recycle() }) bool
	}
	type releaser interface{ ReleaseRequest() }
	var mu sync.Mutex
	recycled := map[string]int{}
	_, dial := serve(t, &h1server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := w.(adopter)
		switch r.URL.Path {
		case "/adopt", "/adopt-kept":
			up := http.Header{"X-Up": {"1"}, "Trailer": {"X-Sum"}}
			path := r.URL.Path
			// Recycling empties the map, as a reuse would: a head written after it would
			// lose its fields.
			owner := recycleFunc(func() {
				mu.Lock()
				recycled[path]++
				mu.Unlock()
				clear(up)
			})
			if !a.AdoptHeader(up, owner) {
				t.Error("a fresh response refused to adopt a header map")
			}
			up.Set("X-Added", "2") // the adopted map is the response's
			_, _ = io.WriteString(w, "adopted")
			w.Header().Set("X-Sum", "3")
			if path == "/adopt" {
				w.(releaser).ReleaseRequest()
			}
		case "/set-first":
			w.Header().Set("X-Own", "1")
			if a.AdoptHeader(http.Header{"X-Up": {"1"}}, nil) {
				t.Error("a response with a field set adopted a header map")
			}
			_, _ = io.WriteString(w, "own")
		default:
			_, _ = io.WriteString(w, "plain")
		}
	})})
	c := dial()
	_, _ = io.WriteString(c, "GET /adopt HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n"+
		"GET /set-first HTTP/1.1\r\nHost: x\r\n\r\nGET /adopt-kept HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	first, body := readResponse(t, br, "GET")
	if first.Header.Get("X-Up") != "1" || first.Header.Get("X-Added") != "2" || first.Trailer.Get("X-Sum") != "3" || body != "adopted" {
		t.Fatalf("adopted answer: %+v %q", first, body)
	}
	next, body := readResponse(t, br, "GET")
	if next.Header.Get("X-Up") != "" || next.Header.Get("X-Added") != "" || body != "plain" {
		t.Fatalf("the next answer carries the adopted map's fields: %+v %q", next, body)
	}
	own, body := readResponse(t, br, "GET")
	if own.Header.Get("X-Own") != "1" || own.Header.Get("X-Up") != "" || body != "own" {
		t.Fatalf("answer that set a field first: %+v %q", own, body)
	}
	kept, body := readResponse(t, br, "GET")
	if kept.Header.Get("X-Up") != "1" || kept.Trailer.Get("X-Sum") != "3" || body != "adopted" {
		t.Fatalf("adopted answer, request kept: %+v %q", kept, body)
	}
	// The connection's goroutine recycled /adopt's map before it answered /next.
	mu.Lock()
	defer mu.Unlock()
	if recycled["/adopt"] != 1 || recycled["/adopt-kept"] != 0 {
		t.Fatalf("recycled %v, want /adopt once and /adopt-kept (request not released) never", recycled)
	}
}

// recycleFunc is an AdoptHeader owner.
type recycleFunc func()

func (f recycleFunc) Recycle() { f() }

// A target's URL is what net/http's server would make of it, whether the loop parses
// it in place (a plain path) or not: a path with sub-delimiters keeps its spelling
// (RawPath), escapes stay escapes, an absolute-form target keeps its host.
func TestTargetURL(t *testing.T) {
	s := &h1server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Escaped", r.URL.EscapedPath())
		w.Header().Set("X-Path", r.URL.Path)
		w.Header().Set("X-Query", r.URL.RawQuery)
		w.Header().Set("X-Url-Host", r.URL.Host)
	})}
	_, dial := serve(t, s)
	c := dial()
	br := bufio.NewReader(c)
	for _, tc := range []struct{ target, escaped, path, query, host string }{
		{"/reviews/0?a=1", "/reviews/0", "/reviews/0", "a=1", ""},
		{"/Products('a')!*(1)?q", "/Products('a')!*(1)", "/Products('a')!*(1)", "q", ""},
		{"/a%2Fb", "/a%2Fb", "/a/b", "", ""},
		{"http://example.test/x?y", "/x", "/x", "y", "example.test"},
	} {
		if _, err := io.WriteString(c, "GET "+tc.target+" HTTP/1.1\r\nHost: h\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		a, _ := readResponse(t, br, http.MethodGet)
		if got := [4]string{a.Header.Get("X-Escaped"), a.Header.Get("X-Path"), a.Header.Get("X-Query"), a.Header.Get("X-Url-Host")}; got != [4]string{tc.escaped, tc.path, tc.query, tc.host} {
			t.Errorf("%s: escaped path, path, query, host = %q", tc.target, got)
		}
	}
}

// A request whose handler calls ReleaseRequest lends its memory to the connection's next
// request, which starts clean (no field, URL or context of the one before); a handler that
// does not call it keeps its request as it was, whatever the connection serves next.
func TestReleasedRequestServesTheNext(t *testing.T) {
	type seen struct {
		req    *http.Request
		path   string
		fields string
		ctx    context.Context
		ctxErr error // while the handler ran
	}
	got := make(chan seen, 8)
	_, dial := serve(t, &h1server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var keys []string
		for k := range r.Header {
			keys = append(keys, k)
		}
		got <- seen{r, r.URL.Path, strings.Join(keys, ","), r.Context(), r.Context().Err()}
		if r.URL.Query().Get("release") == "1" {
			w.(interface{ ReleaseRequest() }).ReleaseRequest()
		}
	})})
	c := dial()
	br := bufio.NewReader(c)
	send := func(target, field string) seen {
		t.Helper()
		_, _ = io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: x\r\n"+field+": v\r\n\r\n")
		if a, _ := readResponse(t, br, "GET"); a.StatusCode != 200 {
			t.Fatalf("%s: status %d", target, a.StatusCode)
		}
		return <-got
	}
	first := send("/a?release=1", "X-One")
	second := send("/b?release=0", "X-Two")
	if second.req != first.req {
		t.Error("a released request's memory did not serve the next request")
	}
	if second.path != "/b" || second.fields != "X-Two" {
		t.Errorf("the next request sees path %q, fields %q; want /b, X-Two", second.path, second.fields)
	}
	if second.ctxErr != nil || first.ctx != second.ctx {
		t.Errorf("the next request's context: %v (same memory: %v)", second.ctxErr, first.ctx == second.ctx)
	}
	third := send("/c?release=1", "X-Three")
	if third.req == second.req {
		t.Fatal("a request kept by its handler served the next one")
	}
	if second.req.URL.Path != "/b" || second.req.Header.Get("X-Two") != "v" || second.req.Header.Get("X-Three") != "" ||
		second.req.Context().Err() == nil {
		t.Errorf("a kept request changed after the next one: %q %v, cancelled %v", second.req.URL.Path, second.req.Header, second.req.Context().Err())
	}
}

// Strings a handler keeps from a request (its target, a field value) stay what they were
// while the connection serves hundreds of requests after it, each releasing its memory for
// the next, with heads of every length: the heads' bytes are never written again.
func TestKeptHeadStringsOutliveLaterRequests(t *testing.T) {
	type kept struct{ path, value, host string }
	var got []kept
	_, dial := serve(t, &h1server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, kept{r.URL.Path, r.Header.Get("X-Value"), r.Host})
		w.(interface{ ReleaseRequest() }).ReleaseRequest()
	})})
	c := dial()
	br := bufio.NewReader(c)
	var want []kept
	for i := range 400 {
		k := kept{
			path:  "/p" + strconv.Itoa(i) + "/" + strings.Repeat("q", i%97),
			value: strings.Repeat(string(rune('a'+i%26)), 1+i*13%300),
			host:  "h" + strconv.Itoa(i%7),
		}
		want = append(want, k)
		_, _ = io.WriteString(c, "GET "+k.path+" HTTP/1.1\r\nHost: "+k.host+"\r\nX-Value: "+k.value+"\r\n\r\n")
		if a, _ := readResponse(t, br, "GET"); a.StatusCode != 200 {
			t.Fatalf("request %d: status %d", i, a.StatusCode)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d requests served, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("request %d as kept by its handler changed: %+v, was %+v", i, got[i], want[i])
		}
	}
}

// A line break in a value the handler set cannot start a field of its own: it goes out
// as a space, as net/http's server writes it, and the value is trimmed.
func TestLineBreakInValue(t *testing.T) {
	_, dial := serve(t, &h1server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-A", " a\r\nInjected: yes\nb\r ")
		w.Header().Set("X-Plain", "plain value")
	})})
	c := dial()
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, _ := readResponse(t, bufio.NewReader(c), "GET")
	if got := resp.Header.Values("X-A"); len(got) != 1 || got[0] != "a  Injected: yes b" {
		t.Fatalf("X-A %q, want one value with spaces for the line breaks", got)
	}
	if resp.Header.Get("Injected") != "" || resp.Header.Get("X-Plain") != "plain value" {
		t.Fatalf("fields %v", resp.Header)
	}
}

// An informational answer (103 Early Hints) carries the handler's fields as they are then,
// sorted, without Transfer-Encoding (RFC 9110 §15.2: never in a 1xx); the final answer
// after it is framed by the server whatever Transfer-Encoding the handler set.
func TestInformationalAnswerFields(t *testing.T) {
	_, dial := serve(t, &h1server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.Header().Set("Transfer-Encoding", "chunked")
		w.Header().Set("A-First", "1")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		_, _ = io.WriteString(w, "body")
	})})
	c := dial()
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	head := testutil.HeadLines(t, br)
	want := []string{"HTTP/1.1 103 Early Hints", "A-First: 1", "Link: </style.css>; rel=preload"}
	if strings.Join(head, "|") != strings.Join(want, "|") {
		t.Fatalf("103 head %q, want %q", head, want)
	}
	resp, body := readResponse(t, br, "GET")
	if resp.StatusCode != http.StatusOK || body != "body" || resp.Header.Get("Link") != "" || resp.Header.Get("A-First") != "1" {
		t.Fatalf("final answer %+v %q", resp, body)
	}
}

// receivedOwner is an AdoptHeader owner that says which fields it received.
type receivedOwner []http1.ReceivedField

func (receivedOwner) Recycle()                                {}
func (o receivedOwner) ReceivedFields() []http1.ReceivedField { return o }

// An adopted map's fields still as its owner received them go out first, in the order
// received; a field the handler added, replaced, removed or changed in place is written
// as any other (sorted after them, its line breaks made spaces), and one removed not at
// all.
func TestAdoptedFieldsInTheOrderReceived(t *testing.T) {
	type adopter interface {
		AdoptHeader(http.Header, interface{ Recycle() }) bool
	}
	_, dial := serve(t, &h1server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		names := []string{"Server", "X-Zeta", "Content-Type", "X-Changed", "X-Replaced", "Connection", "Content-Length", "X-Alpha"}
		vals := []string{"up", "z", "text/plain", "before", "old", "keep-alive", "2", "a"}
		up, rf := http.Header{}, receivedOwner{}
		for i, n := range names {
			up[n] = vals[i : i+1 : i+1]
			rf = append(rf, http1.ReceivedField{Key: n, Value: vals[i], Slot: &vals[i]})
		}
		if !w.(adopter).AdoptHeader(up, rf) {
			t.Error("adoption refused")
		}
		delete(up, "Connection")
		up["X-Changed"][0] = "in\r\nplace" // the same slot, another string
		up.Set("X-Replaced", "new")
		up.Set("X-Added", "1")
		_, _ = io.WriteString(w, "ok")
	})})
	c := dial()
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	head := slices.DeleteFunc(testutil.HeadLines(t, bufio.NewReader(c)), func(l string) bool { return strings.HasPrefix(l, "Date: ") })
	want := []string{"HTTP/1.1 200 OK", "Server: up", "X-Zeta: z", "Content-Type: text/plain", "Content-Length: 2", "X-Alpha: a",
		"X-Added: 1", "X-Changed: in  place", "X-Replaced: new"}
	if strings.Join(head, "|") != strings.Join(want, "|") {
		t.Fatalf("head %q,\nwant %q", head, want)
	}
}
