package pool

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type counts struct{ opened, closed, failed atomic.Int64 }

func (c *counts) ConnOpened()    { c.opened.Add(1) }
func (c *counts) ConnClosed()    { c.closed.Add(1) }
func (c *counts) ConnectFailed() { c.failed.Add(1) }

// upstream starts a loopback HTTP server (h1, or h2c when h2c is set) answering with the
// protocol it saw.
func upstream(t *testing.T, h2c bool, h http.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if h == nil {
		h = func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			_, _ = io.WriteString(w, r.Proto)
		}
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	if h2c {
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetUnencryptedHTTP2(true)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

func newSet(t *testing.T, clusters ...*resource.Cluster) *Set {
	t.Helper()
	s := NewSet(nil)
	m := map[string]*resource.Cluster{}
	for _, c := range clusters {
		m[c.Name] = c
	}
	s.Update(m)
	t.Cleanup(s.Close)
	return s
}

func get(t *testing.T, p *Pool, addr string, proto int, cb Counters) (string, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://svc/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.ProtoMajor = proto
	resp, err := p.RoundTrip(req, addr, cb, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), nil
}

func TestProtocols(t *testing.T) {
	h1 := upstream(t, false, nil)
	h2 := upstream(t, true, nil)
	tests := []struct {
		name     string
		protocol resource.Protocol
		addr     string
		reqProto int
		want     string
	}{
		{"http1 cluster", resource.HTTP1, h1, 2, "HTTP/1.1"},
		{"http2 cluster speaks h2c", resource.HTTP2, h2, 1, "HTTP/2.0"},
		{"downstream h1", resource.Downstream, h2, 1, "HTTP/1.1"},
		{"downstream h2", resource.Downstream, h2, 2, "HTTP/2.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSet(t, &resource.Cluster{Name: "c", Protocol: tt.protocol})
			var c counts
			for range 3 {
				got, err := get(t, s.Get("c"), tt.addr, tt.reqProto, &c)
				if err != nil {
					t.Fatal(err)
				}
				if got != tt.want {
					t.Fatalf("upstream saw %q, want %q", got, tt.want)
				}
			}
			if n := c.opened.Load(); n != 1 {
				t.Fatalf("3 sequential requests opened %d connections, want 1 (reuse)", n)
			}
		})
	}
}

func TestMaxRequestsPerConnectionOneDisablesKeepAlive(t *testing.T) {
	addr := upstream(t, false, nil)
	s := newSet(t, &resource.Cluster{Name: "c", MaxRequestsPerConnection: 1})
	var c counts
	for range 2 {
		if _, err := get(t, s.Get("c"), addr, 1, &c); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.opened.Load(); n != 2 {
		t.Fatalf("opened %d connections, want 2", n)
	}
	testutil.Eventually(t, 5*time.Second, "both connections closed", func() bool { return c.closed.Load() == 2 })
}

func TestConnectErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	_ = ln.Close()

	tests := []struct {
		name      string
		cluster   *resource.Cluster
		addr      string
		reason    string
		transport string
	}{
		{"refused", &resource.Cluster{Name: "c"}, refused, ReasonRemoteConnectionFailure, "delayed connect error: Connection refused"},
		{"timeout", &resource.Cluster{Name: "c", ConnectTimeout: time.Nanosecond}, "127.0.0.1:9", ReasonConnectionTimeout, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSet(t, tt.cluster)
			var c counts
			_, err := get(t, s.Get("c"), tt.addr, 1, &c)
			var ce *ConnectError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v (%T), want *ConnectError", err, err)
			}
			if ce.Reason != tt.reason || ce.Transport != tt.transport {
				t.Fatalf("reason %q transport %q, want %q %q", ce.Reason, ce.Transport, tt.reason, tt.transport)
			}
			if c.failed.Load() != 1 || c.opened.Load() != 0 {
				t.Fatalf("failed=%d opened=%d, want 1 0", c.failed.Load(), c.opened.Load())
			}
		})
	}
}

// misbehaving is a raw TCP upstream: for each connection it runs serve.
func misbehaving(t *testing.T, serve func(c net.Conn, n int)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 0; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			serve(c, n)
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); <-done })
	return ln.Addr().String()
}

// readRequest reads one request head and its body.
func readRequest(c net.Conn, br *bufio.Reader) error {
	req, err := http.ReadRequest(br)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, req.Body)
	return err
}

func TestResetErrors(t *testing.T) {
	const okResp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	tests := []struct {
		name   string
		method string
		serve  func(c net.Conn, n int)
		warm   bool // send one good request first so the failing one reuses the connection
		want   ResetError
	}{
		{
			name: "close after reading request", method: http.MethodGet,
			serve: func(c net.Conn, _ int) {
				_ = readRequest(c, bufio.NewReader(c))
				_ = c.Close()
			},
			want: ResetError{Reason: ReasonConnectionTermination},
		},
		{
			name: "garbage response", method: http.MethodGet,
			serve: func(c net.Conn, _ int) {
				_ = readRequest(c, bufio.NewReader(c))
				_, _ = io.WriteString(c, "NOT HTTP\r\n\r\n")
				_ = c.Close()
			},
			want: ResetError{Reason: ReasonProtocolError},
		},
		{
			name: "reused connection closed after POST", method: http.MethodPost, warm: true,
			serve: func(c net.Conn, _ int) {
				br := bufio.NewReader(c)
				_ = readRequest(c, br)
				_, _ = io.WriteString(c, okResp)
				_ = readRequest(c, br)
				_ = c.Close()
			},
			want: ResetError{Reason: ReasonConnectionTermination, Reused: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := misbehaving(t, tt.serve)
			s := newSet(t, &resource.Cluster{Name: "c"})
			p := s.Get("c")
			if tt.warm {
				if _, err := get(t, p, addr, 1, nil); err != nil {
					t.Fatal(err)
				}
			}
			req, err := http.NewRequest(tt.method, "http://svc/", strings.NewReader("body"))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := p.RoundTrip(req, addr, nil, nil)
			if err == nil {
				resp.Body.Close()
				t.Fatal("no error")
			}
			var re *ResetError
			if !errors.As(err, &re) {
				t.Fatalf("error %v (%T), want *ResetError", err, err)
			}
			if re.Reason != tt.want.Reason || re.Reused != tt.want.Reused || re.BeforeHeaders != tt.want.BeforeHeaders {
				t.Fatalf("got {%q reused=%v before=%v}, want {%q reused=%v before=%v}",
					re.Reason, re.Reused, re.BeforeHeaders, tt.want.Reason, tt.want.Reused, tt.want.BeforeHeaders)
			}
		})
	}
}

func TestContextErrorIsNotAReset(t *testing.T) {
	release := make(chan struct{})
	addr := upstream(t, false, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	s := newSet(t, &resource.Cluster{Name: "c"})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://svc/", nil)
	resp, err := s.Get("c").RoundTrip(req, addr, nil, nil)
	if resp != nil {
		_ = resp.Body.Close()
	}
	var re *ResetError
	if errors.As(err, &re) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want context.DeadlineExceeded", err)
	}
}

func TestUpdate(t *testing.T) {
	addr := upstream(t, false, nil)
	s := newSet(t, &resource.Cluster{Name: "c", IdleTimeout: time.Hour})
	var c counts
	p := s.Get("c")
	if _, err := get(t, p, addr, 1, &c); err != nil {
		t.Fatal(err)
	}

	// Same settings (other fields may change): same pool, same connection.
	s.Update(map[string]*resource.Cluster{
		"c": {Name: "c", IdleTimeout: time.Hour, LBPolicy: resource.RoundRobin},
		"d": {Name: "d"},
	})
	if s.Get("c") != p {
		t.Fatal("unchanged settings replaced the pool")
	}
	if _, err := get(t, s.Get("c"), addr, 1, &c); err != nil {
		t.Fatal(err)
	}
	if c.opened.Load() != 1 || c.closed.Load() != 0 {
		t.Fatalf("opened=%d closed=%d after unchanged update, want 1 0", c.opened.Load(), c.closed.Load())
	}

	// Changed settings: new pool; the old one closes its idle connection.
	s.Update(map[string]*resource.Cluster{"c": {Name: "c", IdleTimeout: time.Minute}})
	if s.Get("c") == p {
		t.Fatal("changed settings kept the pool")
	}
	if s.Get("d") != nil {
		t.Fatal("removed cluster still has a pool")
	}
	testutil.Eventually(t, 5*time.Second, "old connection closed", func() bool { return c.closed.Load() == 1 })
}

func TestInflightRequestSurvivesUpdate(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	addr := upstream(t, false, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "first ")
		w.(http.Flusher).Flush()
		close(started)
		<-release
		_, _ = io.WriteString(w, "last")
	})
	s := newSet(t, &resource.Cluster{Name: "c"})
	var c counts
	req, _ := http.NewRequest(http.MethodGet, "http://svc/", nil)
	resp, err := s.Get("c").RoundTrip(req, addr, &c, nil)
	if err != nil {
		t.Fatal(err)
	}
	<-started
	s.Update(map[string]*resource.Cluster{}) // cluster removed mid-response
	close(release)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(b) != "first last" {
		t.Fatalf("body %q, err %v; want the whole body", b, err)
	}
	testutil.Eventually(t, 5*time.Second, "drained pool closed its connection", func() bool { return c.closed.Load() == 1 })
}

// Connections to loopback upstreams come from the workload's address, so the next hop
// sees who called.
func TestSourceAddress(t *testing.T) {
	addr := upstream(t, false, func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		_, _ = io.WriteString(w, host)
	})
	s := NewSet(nil)
	s.SetSourceAddress(netip.MustParseAddr("127.0.61.9"))
	s.Update(map[string]*resource.Cluster{"c": {Name: "c"}})
	t.Cleanup(s.Close)
	got, err := get(t, s.Get("c"), addr, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got != "127.0.61.9" {
		t.Fatalf("upstream saw the connection from %s, want 127.0.61.9", got)
	}
}
