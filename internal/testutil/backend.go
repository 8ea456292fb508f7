package testutil

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"
)

// Backend serves h on addr ("127.0.N.M:port"; port 0 picks one), HTTP/1.1 and h2c as an
// app does, until the test ends, and returns the address it listens on. At the end its
// connections are closed (a handler still waiting sees its request's context end).
func Backend(t testing.TB, addr string, h http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("backend on %s: %v", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, Protocols: new(http.Protocols)}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("backend on %s: %v", addr, err)
		}
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return l.Addr().String()
}

// Echo answers every request with 200 and "<name> <method> <path>", and the header
// x-backend: name, so a test can tell which backend served it.
func Echo(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", name)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "%s %s %s", name, r.Method, r.URL.RequestURI()) //nolint:gosec // G705: plain text back to the test, not HTML
	})
}
