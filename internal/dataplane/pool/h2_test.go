package pool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

// h2Upstream is an h2c server on 127.0.89.x that counts its connections and holds every
// request to /hold until release is closed.
type h2Upstream struct {
	addr    string
	conns   atomic.Int64 // connections accepted
	active  atomic.Int64 // handlers running
	release chan struct{}
}

func startH2Upstream(t *testing.T, ip string) *h2Upstream {
	t.Helper()
	u := &h2Upstream{release: make(chan struct{})}
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	u.addr = ln.Addr().String()
	srv := &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				u.conns.Add(1)
			}
		},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u.active.Add(1)
			defer u.active.Add(-1)
			if r.URL.Path == "/hold" {
				select {
				case <-u.release:
				case <-r.Context().Done():
				}
			}
			_, _ = io.WriteString(w, r.Proto)
		}),
	}
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetUnencryptedHTTP2(true)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return u
}

func h2Get(ctx context.Context, p *Pool, addr, path string, cb Counters) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://svc"+path, nil)
	if err != nil {
		return "", err
	}
	req.ProtoMajor = 2
	resp, err := p.RoundTrip(req, addr, cb, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestH2LimitsOverflow: one connection of one stream; the second request waits (pending),
// the third overflows max_pending_requests at once, and the waiting one is served when the
// first ends.
func TestH2LimitsOverflow(t *testing.T) {
	u := startH2Upstream(t, "127.0.89.10")
	s := newSet(t, &resource.Cluster{Name: "h2", Protocol: resource.HTTP2,
		MaxConnections: 1, MaxPendingRequests: 1, MaxConcurrentStreams: 1})
	p := s.Get("h2")
	cb := &pendingCounts{}
	ctx := t.Context()

	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(1)
	go func() { defer wg.Done(); _, err := h2Get(ctx, p, u.addr, "/hold", cb); errs <- err }()
	testutil.Eventually(t, 5*time.Second, "the first stream to reach the upstream", func() bool { return u.active.Load() == 1 })
	wg.Add(1)
	go func() { defer wg.Done(); _, err := h2Get(ctx, p, u.addr, "/hold", cb); errs <- err }()
	testutil.Eventually(t, 5*time.Second, "the second request to be pending", func() bool { return cb.active.Load() == 1 })

	_, err := h2Get(ctx, p, u.addr, "/", cb)
	var oe *OverflowError
	if !errors.As(err, &oe) || oe.Limit != "max_pending_requests" || oe.Value != 1 {
		t.Fatalf("third request: %v, want overflow of max_pending_requests 1", err)
	}
	if got := u.active.Load(); got != 1 {
		t.Fatalf("upstream has %d streams, want 1 (max_concurrent_streams)", got)
	}
	close(u.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("held request: %v", err)
		}
	}
	if n := u.conns.Load(); n != 1 {
		t.Fatalf("%d connections, want 1 (max_connections)", n)
	}
}

func TestH2ConnectionLimits(t *testing.T) {
	tests := []struct {
		name      string
		cluster   resource.Cluster
		parallel  int // requests held at once
		wantConns int64
	}{
		{"max_concurrent_streams spreads streams over connections",
			resource.Cluster{MaxConcurrentStreams: 2}, 4, 2},
		{"no stream limit: one connection", resource.Cluster{MaxConnections: 8}, 4, 1},
		{"max_requests_per_connection opens a new connection", resource.Cluster{MaxRequestsPerConnection: 2}, 4, 2},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := startH2Upstream(t, "127.0.89."+string(rune('2'+i))+"0")
			c := tc.cluster
			c.Name, c.Protocol = "h2", resource.HTTP2
			p := newSet(t, &c).Get("h2")
			var wg sync.WaitGroup
			errs := make(chan error, tc.parallel)
			for range tc.parallel {
				wg.Add(1)
				go func() {
					defer wg.Done()
					got, err := h2Get(t.Context(), p, u.addr, "/hold", nil)
					if err == nil && got != "HTTP/2.0" {
						err = errors.New("answer " + got)
					}
					errs <- err
				}()
			}
			testutil.Eventually(t, 5*time.Second, "every stream at the upstream", func() bool { return u.active.Load() == int64(tc.parallel) })
			close(u.release)
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if n := u.conns.Load(); n != tc.wantConns {
				t.Fatalf("%d connections, want %d", n, tc.wantConns)
			}
		})
	}
}

// TestH2MaxRequestsPerConnectionSequential: sequential requests each close the drained
// connection: 3 requests with a limit of 2 use 2 connections.
func TestH2MaxRequestsPerConnectionSequential(t *testing.T) {
	u := startH2Upstream(t, "127.0.89.11")
	p := newSet(t, &resource.Cluster{Name: "h2", Protocol: resource.HTTP2, MaxRequestsPerConnection: 2}).Get("h2")
	cb := &counts{}
	for range 3 {
		if _, err := h2Get(t.Context(), p, u.addr, "/", cb); err != nil {
			t.Fatal(err)
		}
	}
	if n := u.conns.Load(); n != 2 {
		t.Fatalf("%d connections for 3 requests, want 2", n)
	}
	testutil.Eventually(t, 5*time.Second, "the drained connection to close", func() bool { return cb.closed.Load() == 1 })
}

// TestH2ClientChoice: HTTP/2 upstreams use h2client's connections, or net/http's with
// LUCID_HTTP2_CLIENT=nethttp; either way the upstream answers over HTTP/2.
func TestH2ClientChoice(t *testing.T) {
	u := startH2Upstream(t, "127.0.89.12")
	for _, tt := range []struct{ env, want string }{{"", "*h2client.ClientConn"}, {"nethttp", "*http.ClientConn"}} {
		t.Run(tt.want, func(t *testing.T) {
			t.Setenv(http2ClientEnv, tt.env)
			p := newSet(t, &resource.Cluster{Name: "h2", Protocol: resource.HTTP2}).Get("h2")
			got, err := h2Get(t.Context(), p, u.addr, "/", nil)
			if err != nil || got != "HTTP/2.0" {
				t.Fatalf("got %q, %v", got, err)
			}
			p.h2l.mu.Lock()
			defer p.h2l.mu.Unlock()
			for _, c := range p.h2l.conns[u.addr] {
				if typ := fmt.Sprintf("%T", c.cc); typ != tt.want {
					t.Fatalf("connection %s, want %s", typ, tt.want)
				}
			}
			if len(p.h2l.conns[u.addr]) != 1 {
				t.Fatalf("%d connections, want 1", len(p.h2l.conns[u.addr]))
			}
		})
	}
}

// doneCounter counts calls of Done: on a request's context (reqctx) the first one makes
// its channel, an allocation per request.
type doneCounter struct {
	context.Context
	n atomic.Int32
}

func (c *doneCounter) Done() <-chan struct{} {
	c.n.Add(1)
	return c.Context.Done()
}

// TestH2EstablishedConnectionIgnoresDone: taking a stream on an established connection
// does not look at the request context's Done channel (only waiting for a dial does).
func TestH2EstablishedConnectionIgnoresDone(t *testing.T) {
	u := startH2Upstream(t, "127.0.89.13")
	p := newSet(t, &resource.Cluster{Name: "h2", Protocol: resource.HTTP2}).Get("h2")
	if _, err := h2Get(t.Context(), p, u.addr, "/", nil); err != nil {
		t.Fatal(err)
	}
	ctx := &doneCounter{Context: t.Context()}
	c, reused, err := p.h2l.get(ctx, u.addr, nil)
	if err != nil || !reused {
		t.Fatalf("get: reused %v, %v; want the established connection", reused, err)
	}
	p.h2l.release(c)
	if n := ctx.n.Load(); n != 0 {
		t.Errorf("Done called %d times for an established connection, want 0", n)
	}
}
