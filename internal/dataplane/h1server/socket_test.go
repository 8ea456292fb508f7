package h1server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/h1server"
	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
	"github.com/lucid-mesh/lucid/internal/dataplane/sockio"
)

// The other tests serve through countingConn, which hides the socket; these serve as the
// proxy does, each connection an http1.Conn over the socket's raw calls (sockio.Wrap), so
// answers go out as raw sendto/sendmsg calls and reads come in as raw recvfrom calls.

type checkedListener struct{ net.Listener }

func (l checkedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return http1.NewConn(sockio.Wrap(c), http1.Limits{}, nil), nil
}

func serveSocket(t *testing.T, s *h1server.Server) func() net.Conn {
	t.Helper()
	return serveOn(t, s, func(ln net.Listener) net.Listener { return checkedListener{ln} })
}

// serveRaw serves s on the accepted TCP connections themselves: on the socket, with no
// http1 check in between.
func serveRaw(t *testing.T, s *h1server.Server) func() net.Conn {
	t.Helper()
	return serveOn(t, s, func(ln net.Listener) net.Listener { return ln })
}

// serveWay is a way to serve a test: it starts s and returns what dials it.
type serveWay struct {
	name  string
	serve func(*testing.T, *h1server.Server) func() net.Conn
}

// bothWays is the two ways to serve a test: through wrapped connections (no socket
// underneath) and on the socket.
var bothWays = []serveWay{
	{"wrapped", func(t *testing.T, s *h1server.Server) func() net.Conn {
		t.Helper()
		_, d := serve(t, s)
		return d
	}},
	{"socket", serveSocket},
}

// An answer far larger than the socket's buffers arrives whole while the client reads it
// slowly (the raw write waits for room many times), and what the handler did before
// answering is seen by the client once it has the answer (under -race too: the raw
// write is synchronisation as net's is).
func TestSocketLargeAnswer(t *testing.T) {
	body := make([]byte, 16<<20)
	if _, err := rand.Read(body); err != nil {
		t.Fatal(err)
	}
	asked := ""
	dial := serveSocket(t, &h1server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = r.Header.Get("X-Ask")
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		_, _ = w.Write(body)
	})})
	c := dial()
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Ask: yes\r\n\r\n")
	resp, got := readResponse(t, bufio.NewReaderSize(c, 1000), "GET")
	if resp.StatusCode != 200 || !bytes.Equal([]byte(got), body) {
		t.Fatalf("status %d, %d body bytes (want %d, the bytes written)", resp.StatusCode, len(got), len(body))
	}
	if asked != "yes" {
		t.Fatalf("the handler's work is not seen after its answer: %q", asked)
	}
}

// An HTTP/2 client's preface read by the loop is replayed to the HTTP/2 server, whose
// writes go out on the socket.
func TestSocketHandoff(t *testing.T) {
	const preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	s := &h1server.Server{Handler: http.NotFoundHandler(), HTTP2: func(c net.Conn) {
		defer c.Close()
		b := make([]byte, len(preface)+4)
		if _, err := io.ReadFull(c, b); err != nil {
			t.Error(err)
			return
		}
		_, _ = c.Write(b)
	}}
	c := serveSocket(t, s)()
	_, _ = io.WriteString(c, preface+"more")
	b := make([]byte, len(preface)+4)
	if _, err := io.ReadFull(c, b); err != nil || string(b) != preface+"more" {
		t.Fatalf("the HTTP/2 server read %q (%v)", b, err)
	}
}

// A connection waiting for its next request keeps no buffer of its last answer alive (a
// large body goes out as its own buffer).
func TestIdleConnectionKeepsNoAnswerBody(t *testing.T) {
	for _, way := range bothWays {
		t.Run(way.name, func(t *testing.T) {
			freed := make(chan struct{}, 1)
			dial := way.serve(t, &h1server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				body := make([]byte, 1<<20)
				runtime.AddCleanup(&body[0], func(ch chan struct{}) { ch <- struct{}{} }, freed)
				w.Header().Set("Content-Length", fmt.Sprint(len(body)))
				_, _ = w.Write(body)
			})})
			c := dial()
			_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			if resp, got := readResponse(t, bufio.NewReader(c), "GET"); resp.StatusCode != 200 || len(got) != 1<<20 {
				t.Fatalf("status %d, %d body bytes", resp.StatusCode, len(got))
			}
			for range 100 {
				runtime.GC()
				select {
				case <-freed:
					return
				case <-time.After(time.Millisecond):
				}
			}
			t.Error("the idle connection keeps its last answer's body alive")
		})
	}
}

// On the socket, a client that sends its next request the moment it has an answer is
// never left waiting (a readiness lost between the answer and the next read would hang it
// until its deadline), whether the handler answers at once or after a while, whatever
// the answer's size, and pipelined requests are answered in order.
func TestSocketNextRequestRightAfterTheAnswer(t *testing.T) {
	dial := serveSocket(t, &h1server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("wait") {
			time.Sleep(time.Millisecond)
		}
		w.Header().Set("X-Uri", r.RequestURI)
		_, _ = io.WriteString(w, r.URL.Query().Get("say"))
	})})
	c := dial()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	for i := range 3000 {
		uri := fmt.Sprintf("/%d?say=%s", i, bytes.Repeat([]byte("x"), i%1500))
		if i%100 == 0 {
			uri += "&wait"
		}
		_, _ = io.WriteString(c, "GET "+uri+" HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, body := readResponse(t, br, "GET")
		if resp.StatusCode != 200 || resp.Header.Get("X-Uri") != uri || len(body) != i%1500 {
			t.Fatalf("request %d: status %d, X-Uri %q, %d body bytes", i, resp.StatusCode, resp.Header.Get("X-Uri"), len(body))
		}
	}
	_, _ = io.WriteString(c, "GET /a?say=1 HTTP/1.1\r\nHost: x\r\n\r\nGET /b?say=22 HTTP/1.1\r\nHost: x\r\n\r\n")
	for _, want := range []string{"1", "22"} {
		if resp, body := readResponse(t, br, "GET"); resp.StatusCode != 200 || body != want {
			t.Fatalf("pipelined: status %d, body %q, want %q", resp.StatusCode, body, want)
		}
	}
}

// On the socket, a connection that has answered is idle: the idle timeout closes it,
// Shutdown closes it at once, and an answer that closes the connection (Connection:
// close) arrives whole before the end of the stream.
func TestSocketIdleAfterTheAnswer(t *testing.T) {
	get := func(t *testing.T, c net.Conn, br *bufio.Reader, uri string) answer {
		t.Helper()
		_, _ = io.WriteString(c, "GET "+uri+" HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, body := readResponse(t, br, "GET")
		if resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("%s: status %d, body %q", uri, resp.StatusCode, body)
		}
		return resp
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/close" {
			w.Header().Set("Connection", "close")
		}
		_, _ = io.WriteString(w, "ok")
	})
	eof := func(t *testing.T, br *bufio.Reader, within time.Duration) {
		t.Helper()
		start := time.Now()
		if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
			t.Fatalf("read %v, want the end of the connection", err)
		}
		if d := time.Since(start); d > within {
			t.Fatalf("closed after %v, want within %v", d, within)
		}
	}
	t.Run("idle timeout", func(t *testing.T) {
		dial := serveSocket(t, &h1server.Server{Handler: handler, IdleTimeout: 200 * time.Millisecond})
		c := dial()
		br := bufio.NewReader(c)
		get(t, c, br, "/")
		eof(t, br, 5*time.Second)
	})
	t.Run("shutdown", func(t *testing.T) {
		s := &h1server.Server{Handler: handler}
		dial := serveSocket(t, s)
		c := dial()
		br := bufio.NewReader(c)
		get(t, c, br, "/")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown with an idle connection: %v", err)
		}
		eof(t, br, time.Second)
	})
	t.Run("connection close", func(t *testing.T) {
		dial := serveSocket(t, &h1server.Server{Handler: handler})
		c := dial()
		br := bufio.NewReader(c)
		if resp := get(t, c, br, "/close"); !resp.Close {
			t.Fatal("the answer does not say it closes")
		}
		eof(t, br, time.Second)
	})
}

// Bytes that arrive while a request is served (the client's next request, pipelined; or
// the end of its stream) are not lost between the answer and the next read: the runtime
// may have noticed them while the handler waited, and it forgets that when a read begins.
// A request served inside the wait for the next (held.go) keeps that wait open meanwhile,
// so nothing is forgotten; writing the answer from inside a wait begun after it, as the
// pool does for a request, would leave both of these hanging until the idle timeout
// unless it peeked first. Neither the next request nor the client's close waits.
func TestSocketBytesThatCameDuringTheRequest(t *testing.T) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond) // the goroutine parks: the runtime polls meanwhile
		_, _ = io.WriteString(w, r.URL.Path)
	})
	t.Run("next request", func(t *testing.T) {
		c := serveSocket(t, &h1server.Server{Handler: handler})()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		_, _ = io.WriteString(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
		time.Sleep(20 * time.Millisecond) // the first is in its handler
		_, _ = io.WriteString(c, "GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
		for _, want := range []string{"/a", "/b"} {
			if resp, body := readResponse(t, br, "GET"); resp.StatusCode != 200 || body != want {
				t.Fatalf("status %d, body %q, want %q", resp.StatusCode, body, want)
			}
		}
	})
	t.Run("client closes", func(t *testing.T) {
		c := serveSocket(t, &h1server.Server{Handler: handler})()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		_, _ = io.WriteString(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
		time.Sleep(20 * time.Millisecond)
		_ = c.(*net.TCPConn).CloseWrite()
		if resp, body := readResponse(t, br, "GET"); resp.StatusCode != 200 || body != "/a" {
			t.Fatalf("status %d, body %q", resp.StatusCode, body)
		}
		if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
			t.Fatalf("after the client's close: %v, want the server to close", err)
		}
	})
}

// On the socket a request without a body is served inside the wait for the next one,
// and the others as before: a connection mixing them (bodies, one arriving late, and at
// the end an upgrade that takes the connection over) has every answer in order. A
// handler that tries to take over a request without Upgrade served that way is refused
// (the Hijacker's error) and can still answer.
func TestSocketHeldAndOtherRequests(t *testing.T) {
	for _, way := range []serveWay{{"checked", serveSocket}, {"unchecked", serveRaw}} {
		t.Run(way.name, func(t *testing.T) { testHeldAndOtherRequests(t, way.serve) })
	}
}

func testHeldAndOtherRequests(t *testing.T, serve func(*testing.T, *h1server.Server) func() net.Conn) {
	t.Helper()
	dial := serve(t, &h1server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Header.Get("Upgrade") != "":
			takeOverAndEcho(t, w, 4)
			return
		case r.URL.Path == "/take":
			if _, _, err := w.(http.Hijacker).Hijack(); err == nil {
				t.Error("a request without Upgrade was taken over while served inside the wait")
			}
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Error(err)
		}
		_, _ = io.WriteString(w, r.Method+" "+r.URL.Path+" "+string(b))
	})})
	c := dial()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for _, tc := range []struct{ req, late, want string }{
		{"GET /a HTTP/1.1\r\nHost: x\r\n\r\n", "", "GET /a "},
		{"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", "", "POST /b abc"},
		{"GET /c HTTP/1.1\r\nHost: x\r\n\r\n", "", "GET /c "},
		{"GET /take HTTP/1.1\r\nHost: x\r\n\r\n", "", "GET /take "},
		{"POST /d HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nde", "fg", "POST /d defg"},
		{"GET /e HTTP/1.1\r\nHost: x\r\n\r\n", "", "GET /e "},
		{"POST /f HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n", "0\r\n\r\n", "POST /f hi"},
		{"GET /g HTTP/1.1\r\nHost: x\r\n\r\n", "", "GET /g "},
	} {
		_, _ = io.WriteString(c, tc.req)
		if tc.late != "" {
			time.Sleep(30 * time.Millisecond)
			_, _ = io.WriteString(c, tc.late)
		}
		if resp, body := readResponse(t, br, "GET"); resp.StatusCode != 200 || body != tc.want {
			t.Fatalf("%q: status %d, body %q, want %q", tc.req, resp.StatusCode, body, tc.want)
		}
	}
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 101 {
		t.Fatalf("upgrade: status %d, want 101", resp.StatusCode)
	}
	_, _ = io.WriteString(c, "ping")
	b := make([]byte, 4)
	if _, err := io.ReadFull(br, b); err != nil || string(b) != "ping" {
		t.Fatalf("through the taken-over connection: %q, %v", b, err)
	}
}

// On the socket, a request served inside the wait that has run for a while (the reaper
// then peeks less often) is still cancelled soon after its client goes away: within
// maxPeekGap and a tick.
func TestSocketClientGoneLongRequest(t *testing.T) {
	cancelled := make(chan time.Time, 1)
	dial := serveSocket(t, &h1server.Server{Handler: http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			cancelled <- time.Now()
		case <-time.After(20 * time.Second):
		}
	})})
	c := dial()
	_, _ = io.WriteString(c, "GET /watch HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(3 * time.Second)
	closed := time.Now()
	_ = c.Close()
	select {
	case at := <-cancelled:
		if d := at.Sub(closed); d > 1500*time.Millisecond {
			t.Fatalf("cancelled %v after the client went away, want within 1.5 s", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the request's context was not cancelled after its client went away")
	}
}
