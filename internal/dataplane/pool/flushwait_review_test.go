package pool

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// waitingObserver blocks RoundTrip, once it has its connection and before the request is
// written, until wait returns: it stands for a request goroutine that another P's network
// poll overtakes (under load, any idle P polls the network), so the runtime has already
// taken note of what the upstream sent when the request is written.
type waitingObserver struct{ wait func() }

func (o waitingObserver) UpstreamConn(net.Conn, string) { o.wait() }

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
			sigLn := listen92(t)
			defer sigLn.Close()
			sigCli, err := net.Dial("tcp", sigLn.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer sigCli.Close()
			sigSrv, err := sigLn.Accept()
			if err != nil {
				t.Fatal(err)
			}
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
