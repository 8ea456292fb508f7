package h1server_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
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

// bothWays is the two ways to serve a test: through wrapped connections (no socket
// underneath) and on the socket.
var bothWays = []struct {
	name  string
	serve func(*testing.T, *h1server.Server) func() net.Conn
}{
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
