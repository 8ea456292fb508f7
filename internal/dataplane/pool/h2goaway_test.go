package pool

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// goawayUpstream is an h2c upstream whose first connection answers the first request with
// GOAWAY (last stream id 0: the stream was not processed) and closes; later connections
// are served by an http.Server. Addresses in 127.0.84.0/24.
func goawayUpstream(t *testing.T) (addr string, conns *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.84.3:0")
	if err != nil {
		t.Fatal(err)
	}
	conns = new(atomic.Int64)
	rest := &chanListener{addr: ln.Addr(), conns: make(chan net.Conn, 4), done: make(chan struct{})}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Protocols: new(http.Protocols),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "served") })}
	srv.Protocols.SetUnencryptedHTTP2(true)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = srv.Serve(rest) }()
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if conns.Add(1) > 1 {
				rest.conns <- c
				continue
			}
			refuseFirstStream(c)
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); _ = srv.Close(); wg.Wait() })
	return ln.Addr().String(), conns
}

// chanListener hands the connections sent on conns to a server.
type chanListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *chanListener) Addr() net.Addr { return l.addr }

// refuseFirstStream reads the client preface and its first HEADERS, then sends GOAWAY with
// last stream id 0.
func refuseFirstStream(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(br, preface); err != nil {
		return
	}
	fr := http2.NewFramer(c, br)
	if fr.WriteSettings() != nil {
		return
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			_ = fr.WriteGoAway(0, http2.ErrCodeNo, nil)
			return
		}
	}
}

// A request whose stream the upstream did not process (GOAWAY below its id) is sent again
// on a new connection, as net/http's Transport did: the client sees the answer, not a 503.
func TestH2UnprocessedStreamIsSentAgain(t *testing.T) {
	addr, conns := goawayUpstream(t)
	s := newSet(t, &resource.Cluster{Name: "c", Protocol: resource.HTTP2, ConnectTimeout: time.Second})
	got, err := h2Get(t.Context(), s.Get("c"), addr, "/", nil)
	if err != nil || got != "served" {
		t.Fatalf("got %q, %v; want the answer of a second connection", got, err)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2 (the refused one and the retry's)", n)
	}
}
