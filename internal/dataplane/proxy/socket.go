package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/h1server"
	"github.com/lucid-mesh/lucid/internal/dataplane/h2server"
	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
)

type socketKind int

const (
	kindHTTP     socketKind = iota // runs an HTTP connection manager chain
	kindExplicit                   // virtualOutbound as an explicit HTTP proxy
	kindTCP                        // runs a tcp_proxy chain
	kindChains                     // picks a chain per connection: TLS, SNI (gateway.go)
	kindCapture                    // picks a listener and chain by original destination (capture.go)
)

// socket is one bound address. Its target (which listener and chain it runs) can change
// with each Apply without rebinding; the handler reads it per connection or request.
type socket struct {
	addr   netip.AddrPort
	dst    string // addr.String(), formatted once (forward.Inbound.OriginalDst)
	kind   socketKind
	ln     net.Listener
	target atomic.Pointer[want]

	srv   *http.Server  // HTTP kinds
	conns *connListener // kindChains: connections handed to srv after chain selection

	h1  *h1server.Server // serverloop.go: HTTP/1.1 served by the own loop (nil: by srv)
	h2s *h2server.Server // serverloop.go: HTTP/2 connections h1 hands over (nil: to srv)
	h2  *handoffListener // serverloop.go: HTTP/2 connections h1 hands to srv

	// HTTP kinds: connections open on srv (ConnState), and whether the socket drains
	// (drain.go: answers carry Connection: close; idle connections are left to the client).
	open     atomic.Int64
	draining atomic.Bool

	cx *listenerCounters // limit.go: downstream_cx_* of the socket

	closeOnce sync.Once
	tcpConns  sync.WaitGroup // TCP kind: open proxied connections
	tcpMu     sync.Mutex
	tcpLive   map[net.Conn]struct{}
}

func (s *socket) setTarget(w want) { s.target.Store(&w) }

// acceptEach accepts connections until the socket closes and serves each on its own
// goroutine, tracked in tcpLive and tcpConns (shutdown waits for them, then closes them).
func (s *socket) acceptEach(serve func(net.Conn)) error {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return err
		}
		s.tcpMu.Lock()
		s.tcpLive[c] = struct{}{}
		s.tcpConns.Add(1)
		s.tcpMu.Unlock()
		go func() {
			defer func() {
				s.tcpMu.Lock()
				delete(s.tcpLive, c)
				s.tcpMu.Unlock()
				s.tcpConns.Done()
			}()
			serve(c)
		}()
	}
}

func (p *Proxy) bind(w want) (*socket, error) {
	lc := p.listenConfig(w) // capture.go: IP_TRANSPARENT under TPROXY
	ln, err := lc.Listen(context.Background(), listenNetwork(w), w.addr.String())
	if err != nil {
		return nil, err
	}
	ln = p.keepaliveListener(ln) // keepalive.go: TCP keepalive + user timeout on accepted sockets
	sk := &socket{addr: w.addr, dst: w.addr.String(), kind: w.kind, tcpLive: map[net.Conn]struct{}{}}
	sk.setTarget(w)
	ln = p.limitListener(ln, sk) // limit.go: at most MaxConnectionsPerListener open at once
	if w.kind == kindHTTP || w.kind == kindExplicit {
		// http1.go: every request checked with the listener's limits before net/http reads it
		ln = &checkedListener{Listener: ln, limits: func() http1.Limits { return p.requestLimits(p.socketHTTP(sk)) }}
	}
	sk.ln = ln
	if w.kind != kindTCP {
		var protos http.Protocols
		protos.SetHTTP1(true)
		protos.SetUnencryptedHTTP2(true)
		h := p.socketHTTP(sk)
		sk.srv = &http.Server{
			Handler:           p.handler(sk),
			Protocols:         &protos,
			HTTP2:             p.serverHTTP2(), // keepalive.go: PINGs to idle HTTP/2 clients
			ReadHeaderTimeout: time.Minute,
			IdleTimeout:       p.idleTimeout(h), // http1.go: Envoy's downstream idle_timeout (1 h)
			ErrorLog:          slogErrorLog(p.log),
			ConnState:         sk.trackConn,
			ConnContext:       connContext,
		}
		serverLimits(sk.srv, p.requestLimits(h))
	}
	if w.kind == kindChains || w.kind == kindCapture { // gateway.go: HTTP/2 over TLS too, chain per connection
		sk.conns = newConnListener(ln.Addr())
		sk.srv.Protocols.SetHTTP2(true)
		sk.srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
			ctx = connContext(ctx, c)
			if v, ok := ctx.Value(connValuesKey{}).(*connValues); ok {
				v.chain, v.peer = sk.conns.takeChain(c), p.takePeer(c) // gateway.go, mtls.go
			}
			return ctx
		}
		if l := p.cur.Load().snap.Listeners[w.listener]; l != nil && firstChain(l) != nil {
			sk.srv.IdleTimeout = p.idleTimeout(firstChain(l).HTTP)
		}
	}
	if w.kind == kindCapture {
		captureConnContext(sk.srv) // capture.go: the original destination and its listener
	}
	p.useOwnLoop(sk) // serverloop.go
	return sk, nil
}

// serve starts the socket's accept loop.
func (p *Proxy) serve(sk *socket) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		var err error
		switch {
		case sk.kind == kindChains || sk.kind == kindCapture:
			err = p.serveChains(sk)
		case sk.srv != nil:
			err = p.serveHTTP(sk, sk.ln) // serverloop.go
		default:
			err = p.serveTCP(sk)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			p.log.Error("listener stopped", "address", sk.addr.String(), "error", err)
		}
	}()
}

// close stops accepting new connections.
func (s *socket) close() {
	s.closeOnce.Do(func() { _ = s.ln.Close() })
}

// shutdown waits for the socket's connections to finish, closing them when ctx ends.
func (s *socket) shutdown(ctx context.Context) error {
	if s.kind == kindChains || s.kind == kindCapture {
		return s.shutdownChains(ctx)
	}
	if s.srv != nil {
		return s.shutdownHTTP(ctx) // serverloop.go
	}
	done := make(chan struct{})
	go func() { s.tcpConns.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.tcpMu.Lock()
		for c := range s.tcpLive {
			_ = c.Close()
		}
		s.tcpMu.Unlock()
		<-done
		return ctx.Err()
	}
}

// trackConn counts the HTTP server's open connections.
func (s *socket) trackConn(_ net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		s.open.Add(1)
	case http.StateClosed, http.StateHijacked:
		s.open.Add(-1)
	}
}

// drainConns is the first phase of an HTTP socket's drain (not of Close).
// http.Server.Shutdown closes idle keep-alive connections at once, which races with a
// client that has just written its next request on one (the keep-alive race, downstream).
// So first every HTTP/1.1 answer carries Connection: close, and connections are left to
// finish or close for a short grace (idleGrace, at most a fifth of the time ctx leaves):
// a request already on its way is read and answered, not cut. Shutdown then sends HTTP/2
// GOAWAY and closes what is idle.
func (s *socket) drainConns(ctx context.Context) {
	s.draining.Store(true)
	grace := idleGrace
	if deadline, ok := ctx.Deadline(); ok {
		grace = min(grace, time.Until(deadline)/5)
	}
	until := time.NewTimer(grace)
	defer until.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for s.open.Load() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-until.C:
			return
		case <-tick.C:
		}
	}
}

// idleGrace bounds the first drain phase (drainConns).
const idleGrace = time.Second
