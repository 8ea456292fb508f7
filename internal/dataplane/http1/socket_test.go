package http1

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lucid-mesh/lucid/internal/dataplane/sockio"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// socketListener wraps each accepted connection as the proxy does for net/http's server
// (LUCID_HTTP1_SERVER=nethttp): an http1.Conn over the socket's raw calls (sockio.Wrap).
type socketListener struct {
	net.Listener
	t *testing.T
}

func (l socketListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	g := NewConn(sockio.Wrap(c), Limits{}, nil)
	if sockio.Open(g.Conn) == nil {
		l.t.Error("a plaintext TCP connection has no raw socket")
	}
	return g, nil
}

// net/http's server reads ahead in the background after each request and aborts that
// read with a deadline in the past when the handler is done; through the raw socket the
// abort ends the read as a timeout (not a client gone, which would cancel the next
// requests' contexts) and the connection serves its next request, with bodies.
func TestNetHTTPServesOnTheSocket(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: time.Minute, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if err := r.Context().Err(); err != nil { // the abort taken for a client gone
			t.Errorf("%s: the request's context ended: %v", r.URL.Path, err)
		}
		_, _ = io.WriteString(w, r.URL.Path+":"+string(b))
	})}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(socketListener{ln, t}) }()
	defer func() { _ = srv.Close(); <-done }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for _, req := range []string{
		"GET /a HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody",
		"GET /c HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("no answer to %q: %v", req, err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		path := strings.Fields(req)[1]
		if want := path + ":" + map[bool]string{true: "body"}[strings.HasSuffix(req, "body")]; string(b) != want {
			t.Errorf("answer %q, want %q", b, want)
		}
	}
}
