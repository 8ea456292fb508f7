package h2server_test

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/lucid-mesh/lucid/internal/dataplane/h2server"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serve runs s on a loopback listener until the test ends; it returns the address.
func serve(t testing.TB, s *h2server.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.ServeConn(c)
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
		_ = s.Close()
		waitClosed(s)
	})
	return ln.Addr().String()
}

// waitClosed waits until s has no connection left (their goroutines have ended).
func waitClosed(s *h2server.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 10e9)
	defer cancel()
	_ = s.Shutdown(ctx)
}

// h2c is an HTTP/2 client with prior knowledge (net/http's, x/net's client bundled).
func h2c(tb testing.TB) *http.Client {
	tb.Helper()
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}
