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
)

type socketKind int

const (
	kindHTTP     socketKind = iota // runs an HTTP connection manager chain
	kindExplicit                   // virtualOutbound as an explicit HTTP proxy
	kindTCP                        // runs a tcp_proxy chain
)

// socket is one bound address. Its target (which listener and chain it runs) can change
// with each Apply without rebinding; the handler reads it per connection or request.
type socket struct {
	addr   netip.AddrPort
	kind   socketKind
	ln     net.Listener
	target atomic.Pointer[want]

	srv *http.Server // HTTP kinds

	closeOnce sync.Once
	tcpConns  sync.WaitGroup // TCP kind: open proxied connections
	tcpMu     sync.Mutex
	tcpLive   map[net.Conn]struct{}
}

func (s *socket) setTarget(w want) { s.target.Store(&w) }

func (p *Proxy) bind(w want) (*socket, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", w.addr.String())
	if err != nil {
		return nil, err
	}
	ln = p.keepaliveListener(ln) // keepalive.go: TCP keepalive + user timeout on accepted sockets
	sk := &socket{addr: w.addr, kind: w.kind, ln: ln, tcpLive: map[net.Conn]struct{}{}}
	sk.setTarget(w)
	if w.kind != kindTCP {
		var protos http.Protocols
		protos.SetHTTP1(true)
		protos.SetUnencryptedHTTP2(true)
		sk.srv = &http.Server{
			Handler:           p.handler(sk),
			Protocols:         &protos,
			HTTP2:             p.serverHTTP2(), // keepalive.go: PINGs to idle HTTP/2 clients
			ReadHeaderTimeout: time.Minute,
			ErrorLog:          slogErrorLog(p.log),
		}
	}
	return sk, nil
}

// serve starts the socket's accept loop.
func (p *Proxy) serve(sk *socket) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		var err error
		if sk.srv != nil {
			err = sk.srv.Serve(sk.ln)
		} else {
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
	if s.srv != nil {
		err := s.srv.Shutdown(ctx)
		if err != nil {
			_ = s.srv.Close()
		}
		return err
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
