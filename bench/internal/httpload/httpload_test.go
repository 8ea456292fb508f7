package httpload

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// server answers every request with body; it counts the connections it accepted.
func server(t *testing.T, body string) (addr string, conns *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns = new(atomic.Int64)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(body)) }),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		},
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String(), conns
}

// Keep-alive: every answer counted, one connection per client connection.
func TestRunKeepAlive(t *testing.T) {
	addr, conns := server(t, strings.Repeat("x", 1024))
	r := Run(Options{Addr: addr, Head: "GET / HTTP/1.1\r\nHost: a\r\n", Conns: 3, Duration: 300 * time.Millisecond, BodySize: 1024})
	if r.OK == 0 || r.Failed != 0 {
		t.Fatalf("%d answers, %d failures (%s)", r.OK, r.Failed, r.FirstErr)
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("the server accepted %d connections, want 3 kept alive", n)
	}
}

// NewConn: a connection per request, closed by the client.
func TestRunNewConn(t *testing.T) {
	addr, conns := server(t, "hello")
	r := Run(Options{Addr: addr, Head: "GET / HTTP/1.1\r\nHost: a\r\n", Conns: 2, Duration: 300 * time.Millisecond, NewConn: true})
	if r.OK == 0 || r.Failed != 0 {
		t.Fatalf("%d answers, %d failures (%s)", r.OK, r.Failed, r.FirstErr)
	}
	if n := conns.Load(); n != r.OK {
		t.Errorf("the server accepted %d connections for %d answers, want one each", n, r.OK)
	}
}

// An answer of another size, or another status, is a failure that says why.
func TestRunFailures(t *testing.T) {
	addr, _ := server(t, "short")
	r := Run(Options{Addr: addr, Head: "GET / HTTP/1.1\r\nHost: a\r\n", Conns: 1, Duration: 50 * time.Millisecond, BodySize: 1024})
	if r.OK != 0 || r.Failed == 0 || r.FirstErr != "answer of 5 bytes, want 1024" {
		t.Errorf("wrong size: %d answers, %d failures, first %q", r.OK, r.Failed, r.FirstErr)
	}
	err := readAnswer(bufio.NewReader(strings.NewReader("HTTP/1.1 503 Service Unavailable\r\n\r\n")), 0)
	if err == nil || err.Error() != `status not 200: "HTTP/1.1 503 Service Unavailable"` {
		t.Errorf("503: %v", err)
	}
}

func FuzzReadAnswer(f *testing.F) {
	f.Add("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", 0)
	f.Add("HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999\r\n\r\n", 3)
	f.Add("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 0)
	f.Fuzz(func(t *testing.T, in string, size int) {
		err := readAnswer(bufio.NewReaderSize(strings.NewReader(in), 64), size)
		if err == nil && !strings.HasPrefix(in, "HTTP/1.1 200") {
			t.Fatalf("accepted %q", in)
		}
	})
}
