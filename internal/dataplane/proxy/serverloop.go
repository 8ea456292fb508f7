package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"sync"

	"github.com/lucid-mesh/lucid/internal/dataplane/h1server"
	"github.com/lucid-mesh/lucid/internal/dataplane/h2server"
)

// The proxy's HTTP sockets serve HTTP/1.1 with its own loop (package h1server: one write
// per answer, no background read, coarse timeouts) and HTTP/2 with its own server
// (package h2server: one reader goroutine per connection, one goroutine per stream, the
// frames of a small answer in one write), to which h1server hands h2c (prior knowledge)
// and TLS ALPN h2 connections. LUCID_HTTP2_SERVER=nethttp hands HTTP/2 to the socket's
// net/http server instead; LUCID_HTTP1_SERVER=nethttp serves both with net/http.

// ServerLoopEnv names the environment variable that selects the HTTP/1.1 serving loop:
// "own" (the default) or "nethttp" (net/http serves HTTP/1.1 and HTTP/2).
const ServerLoopEnv = "LUCID_HTTP1_SERVER"

// HTTP2ServerEnv names the environment variable that selects the HTTP/2 server behind the
// own HTTP/1.1 loop: "own" (the default, h2server) or "nethttp".
const HTTP2ServerEnv = "LUCID_HTTP2_SERVER"

// ownLoop reports whether HTTP/1.1 is served by h1server.
func ownLoop() bool { return os.Getenv(ServerLoopEnv) != "nethttp" }

// ownHTTP2 reports whether HTTP/2 is served by h2server (behind h1server).
func ownHTTP2() bool { return os.Getenv(HTTP2ServerEnv) != "nethttp" }

// useOwnLoop puts h1server in front of the socket's http.Server (built by bind, its
// ConnContext complete): HTTP/1.1 connections are served by h1server with the same
// handler, context and limits; HTTP/2 ones by h2server (sk.h2s) with them too, or by the
// http.Server through sk.h2.
func (p *Proxy) useOwnLoop(sk *socket) {
	if sk.srv == nil || !ownLoop() {
		return
	}
	srv := sk.srv
	connCtx := srv.ConnContext
	sk.h1 = &h1server.Server{
		Handler:           srv.Handler,
		ConnContext:       connCtx,
		ConnState:         sk.trackConn,
		IdleTimeout:       srv.IdleTimeout,
		ReadHeaderTimeout: srv.ReadHeaderTimeout,
		MaxHeaderBytes:    srv.MaxHeaderBytes,
		ErrorLog:          srv.ErrorLog,
	}
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if h, ok := c.(*h1server.Handoff); ok { // the HTTP/1.1 loop made its context already
			return h.Context()
		}
		if connCtx != nil {
			return connCtx(ctx, c)
		}
		return ctx
	}
	if ownHTTP2() {
		sk.h2s = &h2server.Server{
			Handler:        srv.Handler,
			ConnContext:    srv.ConnContext,
			ConnState:      sk.trackConn,
			Config:         srv.HTTP2, // keepalive.go: PINGs to idle clients
			MaxHeaderBytes: srv.MaxHeaderBytes,
			IdleTimeout:    srv.IdleTimeout,
			ErrorLog:       srv.ErrorLog,
		}
		sk.h1.HTTP2 = sk.h2s.ServeConn
		return
	}
	h2 := &handoffListener{addr: sk.ln.Addr(), ch: make(chan net.Conn), done: make(chan struct{})}
	sk.h2 = h2
	sk.h1.HTTP2 = h2.push
}

// serveHTTP serves ln's connections: with h1server (and h2server, or net/http for the
// HTTP/2 connections it hands over); or with net/http alone.
func (p *Proxy) serveHTTP(sk *socket, ln net.Listener) error {
	if sk.h1 == nil {
		return sk.srv.Serve(ln)
	}
	if sk.h2 != nil {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			if err := sk.srv.Serve(sk.h2); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				p.log.Error("listener's HTTP/2 server stopped", "address", sk.addr.String(), "error", err)
			}
		}()
	}
	return sk.h1.Serve(ln)
}

// shutdownHTTP shuts the socket's HTTP servers down at once (see socket.shutdown): HTTP/2
// connections get GOAWAY while HTTP/1.1 ones finish their request; what is left when ctx
// ends is closed.
func (s *socket) shutdownHTTP(ctx context.Context) error {
	var err2 error
	var wg sync.WaitGroup
	if s.h2s != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err2 = s.h2s.Shutdown(ctx); err2 != nil {
				_ = s.h2s.Close()
			}
		}()
	}
	var err1 error
	if s.h1 != nil {
		if err1 = s.h1.Shutdown(ctx); err1 != nil {
			_ = s.h1.Close()
		}
		if s.h2 != nil {
			_ = s.h2.Close()
		}
	}
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	wg.Wait()
	return errors.Join(err1, err2, err)
}

// noKeepAlives stops keep-alive on the socket's HTTP servers (the drain's second phase):
// HTTP/1.1 connections close once idle, HTTP/2 ones get GOAWAY once without streams.
func (s *socket) noKeepAlives() {
	if s.h1 != nil {
		s.h1.SetKeepAlivesEnabled(false)
	}
	if s.h2s != nil {
		s.h2s.SetKeepAlivesEnabled(false)
	}
	s.srv.SetKeepAlivesEnabled(false)
}

// handoffListener is where h1server hands HTTP/2 connections to the socket's http.Server.
type handoffListener struct {
	addr net.Addr
	ch   chan net.Conn
	once sync.Once
	done chan struct{}
}

// push hands c over, or closes it when the listener has closed.
func (l *handoffListener) push(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		_ = c.Close()
	}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }
