package h2server_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"

	"github.com/lucid-mesh/lucid/internal/dataplane/h2server"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

type connKey struct{}

// TestTLS: over a *tls.Conn that negotiated h2, the request carries the TLS state (for
// :scheme https), the connection's context comes from ConnContext, and ConnState hears
// the connection open and close.
func TestTLS(t *testing.T) {
	ca := testutil.CA(t, "h2server test")
	leaf := testutil.Issue(t, ca, false, "server.test")
	var mu sync.Mutex
	var states []http.ConnState
	s := &h2server.Server{
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, "from ConnContext")
		},
		ConnState: func(_ net.Conn, st http.ConnState) {
			mu.Lock()
			states = append(states, st)
			mu.Unlock()
		},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sni := ""
			if r.TLS != nil {
				sni = r.TLS.ServerName + " " + r.TLS.NegotiatedProtocol
			}
			_, _ = io.WriteString(w, sni+"; "+r.Context().Value(connKey{}).(string))
		}),
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if err := c.(*tls.Conn).Handshake(); err != nil {
				_ = c.Close()
				continue
			}
			s.ServeConn(c)
		}
	}()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.RootPool(), ServerName: "server.test", MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true}
	resp, err := (&http.Client{Transport: tr}).Get("https://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	tr.CloseIdleConnections()
	_ = ln.Close()
	<-done
	waitClosed(s)
	if resp.Proto != "HTTP/2.0" || string(body) != "server.test h2; from ConnContext" {
		t.Errorf("%s %q", resp.Proto, body)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(states) != 2 || states[0] != http.StateNew || states[1] != http.StateClosed {
		t.Errorf("ConnState heard %v, want new then closed", states)
	}
}
