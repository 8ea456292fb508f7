package pool

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitingObserver blocks RoundTrip, once it has its connection and before the request is
// written, until wait returns: it stands for a request goroutine that another P's network
// poll overtakes (under load, any idle P polls the network), so the runtime has already
// taken note of what the upstream sent when the request is written.
type waitingObserver struct{ wait func() }

func (o waitingObserver) UpstreamConn(net.Conn, string) { o.wait() }

// signalPair is a connected pair of loopback sockets for the upstream and the test to
// tell each other when they are ready. The caller closes them before the upstream's
// cleanup, which waits for its handlers (one may be blocked reading srv).
func signalPair(t *testing.T) (cli, srv net.Conn) {
	t.Helper()
	ln := listen92(t)
	defer ln.Close()
	cli, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	srv, err = ln.Accept()
	if err != nil {
		_ = cli.Close()
		t.Fatal(err)
	}
	return cli, srv
}

// TestH1WhatArrivedBeforeTheWriteIsRead: an upstream that answers, or closes its side,
// before the request reaches it, and then keeps reading without sending anything more.
// The proxy reads what arrived (the answer; the end of the connection) instead of
// waiting for readiness the runtime already reported before the write, which would hang
// the request until its timeout.
func TestH1WhatArrivedBeforeTheWriteIsRead(t *testing.T) {
	for _, tc := range []struct {
		name  string
		early func(c net.Conn)
		check func(t *testing.T, r h1Result, err error)
	}{{
		name: "an answer",
		early: func(c net.Conn) {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nearly")
		},
		check: func(t *testing.T, r h1Result, err error) {
			t.Helper()
			if err != nil || r.code != 200 || r.body != "early" {
				t.Fatalf("got %d %q %v, want 200 \"early\" (the answer already on the connection)", r.code, r.body, err)
			}
		},
	}, {
		name:  "a FIN",
		early: func(c net.Conn) { _ = c.(*net.TCPConn).CloseWrite() },
		check: func(t *testing.T, _ h1Result, err error) {
			t.Helper()
			var re *ResetError
			if !errors.As(err, &re) {
				t.Fatalf("got %v, want a ResetError (the upstream closed the connection)", err)
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			sigCli, sigSrv := signalPair(t)
			defer sigCli.Close()
			defer sigSrv.Close()

			addr := rawServer(t, func(c net.Conn, br *bufio.Reader, _ int) {
				tc.early(c)
				_, _ = sigSrv.Write([]byte{1}) // after the early bytes reached the proxy's socket
				_, _ = io.Copy(io.Discard, br) // reads the request, never answers it
			})
			p := newSet(t, h1Cluster("c")).Get("c")
			obs := waitingObserver{wait: func() {
				var b [1]byte
				_, _ = sigCli.Read(b[:]) // a network poll that also sees the proxy's socket ready
			}}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var r h1Result
			resp, err := p.RoundTrip(newReq(t, "GET", "/", nil).WithContext(ctx), addr, nil, obs)
			if err == nil {
				b, rerr := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				r, err = h1Result{code: resp.StatusCode, body: string(b)}, rerr
			}
			if ctx.Err() != nil {
				t.Fatalf("still waiting when the guard ended (%v): what arrived before the write was never read", err)
			}
			tc.check(t, r, err)
		})
	}
}

// TestH1ReusedClosedBeforeTheWriteGoesElsewhere: an idle connection the upstream closes
// (FIN) or sends stray bytes on after the pool took it for a bodiless request, just before
// the write, carries nothing: the request goes on a new connection and gets its answer,
// without an error and without the wait for readiness the runtime already reported. A
// server closed while idle is still never sent the request.
func TestH1ReusedClosedBeforeTheWriteGoesElsewhere(t *testing.T) {
	for _, tc := range []struct {
		name  string
		early func(c net.Conn)
	}{
		{"a FIN", func(c net.Conn) { _ = c.(*net.TCPConn).CloseWrite() }},
		{"stray bytes", func(c net.Conn) { _, _ = io.WriteString(c, "HTTP/1.1 408 Request Timeout\r\n\r\n") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sigCli, sigSrv := signalPair(t)
			defer sigCli.Close()
			defer sigSrv.Close()

			var requests [2]atomic.Int32 // requests each connection received
			addr := rawServer(t, func(c net.Conn, br *bufio.Reader, n int) {
				if n > 1 {
					return
				}
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				requests[n].Add(1)
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n"+strconv.Itoa(n))
				if n == 1 {
					_, _ = io.Copy(io.Discard, br)
					return
				}
				var b [1]byte
				if _, err := sigSrv.Read(b[:]); err != nil { // the pool took the idle connection
					return
				}
				tc.early(c)
				_, _ = sigSrv.Write([]byte{1})
				for {
					if _, err := http.ReadRequest(br); err != nil {
						return
					}
					requests[n].Add(1) // never answered
				}
			})
			p := newSet(t, h1Cluster("c")).Get("c")
			if r, err := do(t, p, addr, newReq(t, "GET", "/", nil), nil); err != nil || r.body != "0" {
				t.Fatalf("first request: %d %q %v", r.code, r.body, err)
			}
			var once sync.Once
			obs := waitingObserver{wait: func() {
				once.Do(func() {
					_, _ = sigCli.Write([]byte{1})
					var b [1]byte
					_, _ = sigCli.Read(b[:])
				})
			}}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			resp, err := p.RoundTrip(newReq(t, "GET", "/", nil).WithContext(ctx), addr, nil, obs)
			if err != nil {
				t.Fatalf("second request: %v", err)
			}
			b, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || string(b) != "1" {
				t.Fatalf("second request: %d %q %v, want 200 \"1\" (the new connection's answer)", resp.StatusCode, b, err)
			}
			if got := requests[0].Load(); got != 1 {
				t.Fatalf("the closed connection received %d requests, want 1 (the first only)", got)
			}
		})
	}
}
