package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"sync"

	"github.com/lucid-mesh/lucid/internal/dataplane/h1server"
)

// The proxy's HTTP sockets serve HTTP/1.1 with its own loop (package h1server: one write
// per answer, no background read, coarse timeouts) and hand HTTP/2 connections to the
// socket's net/http server. LUCID_HTTP1_SERVER=nethttp serves HTTP/1.1 with net/http too.

// ServerLoopEnv names the environment variable that selects the HTTP/1.1 serving loop:
// "own" (the default) or "nethttp".
const ServerLoopEnv = "LUCID_HTTP1_SERVER"

// ownLoop reports whether HTTP/1.1 is served by h1server.
func ownLoop() bool { return os.Getenv(ServerLoopEnv) != "nethttp" }

// useOwnLoop puts h1server in front of the socket's http.Server (built by bind, its
// ConnContext complete): HTTP/1.1 connections are served by h1server with the same
// handler, context and limits; HTTP/2 ones reach the http.Server through sk.h2.
func (p *Proxy) useOwnLoop(sk *socket) {
	if sk.srv == nil || !ownLoop() {
		return
	}
	srv := sk.srv
	connCtx := srv.ConnContext
	h2 := &handoffListener{addr: sk.ln.Addr(), ch: make(chan net.Conn), done: make(chan struct{})}
	sk.h2 = h2
	sk.h1 = &h1server.Server{
		Handler:           srv.Handler,
		ConnContext:       connCtx,
		ConnState:         sk.trackConn,
		HTTP2:             h2.push,
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
}

// serveHTTP serves ln's connections: with h1server and, beside it, net/http for the
// HTTP/2 connections it hands over; or with net/http alone.
func (p *Proxy) serveHTTP(sk *socket, ln net.Listener) error {
	if sk.h1 == nil {
		return sk.srv.Serve(ln)
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if err := sk.srv.Serve(sk.h2); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			p.log.Error("listener's HTTP/2 server stopped", "address", sk.addr.String(), "error", err)
		}
	}()
	return sk.h1.Serve(ln)
}

// shutdownHTTP shuts the socket's HTTP servers down (see socket.shutdown), closing what
// is left when ctx ends.
func (s *socket) shutdownHTTP(ctx context.Context) error {
	var err1 error
	if s.h1 != nil {
		if err1 = s.h1.Shutdown(ctx); err1 != nil {
			_ = s.h1.Close()
		}
		_ = s.h2.Close()
	}
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	if err1 != nil {
		return err1
	}
	return err
}

// noKeepAlives stops keep-alive on the socket's HTTP servers (the drain's second phase).
func (s *socket) noKeepAlives() {
	if s.h1 != nil {
		s.h1.SetKeepAlivesEnabled(false)
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
