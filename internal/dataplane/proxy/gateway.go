package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// Router (ingress gateway) listeners: one socket whose filter chains are chosen per
// connection, as Envoy chooses them. The TLS inspector reads the ClientHello (sni.go),
// ChainForConnection picks the chain, and then the chain runs:
//
//	TLS chain + HTTP  → TLS handshake (tls.go), then HTTP/1.1 or HTTP/2 by ALPN → forward
//	TLS chain + TCP   → TLS handshake, then tcp_proxy of the decrypted bytes
//	plain chain + TCP → tcp_proxy of the bytes as they came (TLS passthrough by SNI)
//	plain chain + HTTP→ HTTP (plaintext, h2c too)
//
// No matching chain closes the connection, as Envoy does (filter_chain_not_found).

// DefaultListenerFiltersTimeout is how long the TLS inspector waits for a ClientHello,
// and how long a TLS handshake may take (Envoy's listener_filters_timeout: 15 s).
const DefaultListenerFiltersTimeout = 15 * time.Second

// needsChainSelection reports whether a bound listener must pick its filter chain per
// connection: a chain terminates TLS or matches on what the TLS inspector reads, or the
// chains mix HTTP and TCP.
func needsChainSelection(l *resource.Listener) bool {
	if l.TLSInspector || len(l.FilterChains) > 1 {
		return true
	}
	chains := l.FilterChains
	if l.DefaultChain != nil {
		chains = append(chains[:len(chains):len(chains)], *l.DefaultChain)
	}
	for _, fc := range chains {
		m := fc.Match
		if fc.TLS != nil || len(m.ServerNames) > 0 || m.TransportProtocol != "" || len(m.ApplicationProtocols) > 0 {
			return true
		}
	}
	return len(chains) > 1
}

// listenerKind is the socket kind of a bound listener that is neither virtualOutbound
// nor virtualInbound.
func listenerKind(l *resource.Listener) socketKind {
	switch {
	case needsChainSelection(l):
		return kindChains
	case firstChain(l).HTTP == nil:
		return kindTCP
	}
	return kindHTTP
}

// Connection is what a listener knows about a connection when it picks a filter chain.
type Connection struct {
	DestinationPort      uint16
	ServerName           string   // SNI ("" without TLS or without the extension)
	TransportProtocol    string   // "tls" or "raw_buffer"
	ApplicationProtocols []string // the ClientHello's ALPN list
}

// ChainForConnection picks l's filter chain for a connection the way Envoy does, one
// criterion after the other, each narrowing to its most specific match without going
// back: destination_port (exact, then unset); server_names (exact, then the longest
// "*.suffix" wildcard, then chains without server names); transport_protocol (exact,
// then unset); application_protocols (the first of the client's protocols some chain
// lists, then unset). No match gives the default chain, which may be nil.
func ChainForConnection(l *resource.Listener, c Connection) *resource.FilterChain {
	cands := make([]*resource.FilterChain, 0, len(l.FilterChains))
	for i := range l.FilterChains {
		cands = append(cands, &l.FilterChains[i])
	}
	cands = narrow(cands, func(fc *resource.FilterChain) bool { return fc.Match.DestinationPort == uint32(c.DestinationPort) },
		func(fc *resource.FilterChain) bool { return fc.Match.DestinationPort == 0 })
	cands = narrowServerName(cands, strings.ToLower(c.ServerName))
	cands = narrow(cands, func(fc *resource.FilterChain) bool { return fc.Match.TransportProtocol == c.TransportProtocol },
		func(fc *resource.FilterChain) bool { return fc.Match.TransportProtocol == "" })
	cands = narrowALPN(cands, c.ApplicationProtocols)
	if len(cands) > 0 {
		return cands[0]
	}
	return l.DefaultChain
}

// narrow keeps the chains that match exactly, or, when none does, those that leave the
// criterion unset.
func narrow(cands []*resource.FilterChain, exact, unset func(*resource.FilterChain) bool) []*resource.FilterChain {
	if out := filterChains(cands, exact); len(out) > 0 {
		return out
	}
	return filterChains(cands, unset)
}

func filterChains(cands []*resource.FilterChain, keep func(*resource.FilterChain) bool) []*resource.FilterChain {
	var out []*resource.FilterChain
	for _, fc := range cands {
		if keep(fc) {
			out = append(out, fc)
		}
	}
	return out
}

func narrowServerName(cands []*resource.FilterChain, sni string) []*resource.FilterChain {
	has := func(name string) func(*resource.FilterChain) bool {
		return func(fc *resource.FilterChain) bool {
			for _, n := range fc.Match.ServerNames {
				if n == name {
					return true
				}
			}
			return false
		}
	}
	if sni != "" {
		if out := filterChains(cands, has(sni)); len(out) > 0 {
			return out
		}
		// Wildcards, longest suffix first: a.b.example.com tries *.b.example.com,
		// *.example.com, *.com.
		for i := 1; i < len(sni); i++ {
			if sni[i] != '.' {
				continue
			}
			if out := filterChains(cands, has("*"+sni[i:])); len(out) > 0 {
				return out
			}
		}
	}
	return filterChains(cands, func(fc *resource.FilterChain) bool { return len(fc.Match.ServerNames) == 0 })
}

func narrowALPN(cands []*resource.FilterChain, alpn []string) []*resource.FilterChain {
	for _, proto := range alpn {
		out := filterChains(cands, func(fc *resource.FilterChain) bool {
			for _, p := range fc.Match.ApplicationProtocols {
				if p == proto {
					return true
				}
			}
			return false
		})
		if len(out) > 0 {
			return out
		}
	}
	return filterChains(cands, func(fc *resource.FilterChain) bool { return len(fc.Match.ApplicationProtocols) == 0 })
}

// InspectsTLS reports whether connections to l are peeked for a ClientHello: the
// listener has the TLS inspector, or a chain matches on what it reads. Otherwise every
// connection looks like plaintext without SNI to ChainForConnection.
func InspectsTLS(l *resource.Listener) bool {
	if l.TLSInspector {
		return true
	}
	for _, fc := range l.FilterChains {
		m := fc.Match
		if len(m.ServerNames) > 0 || m.TransportProtocol != "" || len(m.ApplicationProtocols) > 0 {
			return true
		}
	}
	return false
}

// serveChains is the accept loop of a kindChains socket. HTTP connections go on to the
// socket's HTTP server through sk.conns; the others are handled here until they end.
func (p *Proxy) serveChains(sk *socket) error {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if err := p.serveHTTP(sk, sk.conns); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			p.log.Error("listener's HTTP server stopped", "address", sk.addr.String(), "error", err)
		}
	}()
	defer func() { _ = sk.conns.Close() }()
	return sk.acceptEach(func(c net.Conn) { p.serveChainConn(sk, c) })
}

// serveChainConn inspects one connection, picks its chain and runs it.
func (p *Proxy) serveChainConn(sk *socket, c net.Conn) {
	if sk.kind == kindCapture {
		p.serveCaptureConn(sk, c) // capture.go: by original destination
		return
	}
	t := p.cur.Load()
	tg := sk.target.Load()
	l := t.snap.Listeners[tg.listener]
	if l == nil { // the socket outlived its listener (a config change raced this connection)
		_ = c.Close()
		return
	}
	conn, in := c, Connection{DestinationPort: sk.addr.Port(), TransportProtocol: "raw_buffer"}
	if InspectsTLS(l) {
		var err error
		if conn, in, err = p.inspectInbound(l, c, sk.addr.Port()); err != nil { // sniff.go: TLS, and HTTP on an undeclared inbound port
			p.log.Debug("inspecting the connection: closing it", "listener", l.Name, "remote", c.RemoteAddr().String(), "error", err)
			_ = c.Close()
			return
		}
	}
	fc := ChainForConnection(l, in)
	if (fc == nil || fc == l.DefaultChain) && p.refusePlaintext(l, sk.addr.Port(), c, in.TransportProtocol) { // mtls.go: STRICT
		_ = c.Close()
		return
	}
	if fc == nil {
		p.log.Debug("no filter chain matches the connection; closing it (filter_chain_not_found)", "listener", l.Name,
			"remote", c.RemoteAddr().String(), "server_name", in.ServerName, "transport_protocol", in.TransportProtocol)
		_ = c.Close()
		return
	}
	var tc *tls.Conn
	if fc.TLS != nil {
		var ok bool
		if tc, ok = p.handshake(conn, l.Name, fc, t.tls[fc], in.ServerName); !ok {
			return
		}
		conn = tc
	}
	if fc.HTTP != nil {
		conn = p.checkedConn(conn, fc)           // http1.go
		p.rememberPeer(conn, p.meshPeer(tc, fc)) // mtls.go: the peer's identity for the requests
		if !sk.conns.push(conn, fc) {
			p.forgetPeer(conn)
			_ = conn.Close()
		}
		return
	}
	defer conn.Close()
	p.opts.Forwarder.ServeTCP(conn, fc.TCP, forward.Inbound{Listener: l.Name, Direction: direction(l), OriginalDst: sk.dst, Own: t.own,
		Authz: t.tcpAuthz(fc), Peer: p.meshPeer(tc, fc)}) // authz.go, mtls.go
}

// handshake terminates TLS on conn with the chain's configuration. A failed handshake
// (a client that offers only TLS 1.1, a MUTUAL client without a certificate or with an
// untrusted one) closes the connection, is counted under listener.<name>.ssl.* and logged.
func (p *Proxy) handshake(conn net.Conn, listener string, fc *resource.FilterChain, cfg *tls.Config, sni string) (*tls.Conn, bool) {
	if cfg == nil { // the chain is from a configuration newer than the table read
		_ = conn.Close()
		return nil, false
	}
	st := p.tlsStats.of(listener)
	ctx, cancel := context.WithTimeout(context.Background(), p.opts.ListenerFiltersTimeout)
	defer cancel()
	tc := tls.Server(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		reason := countHandshakeError(st, err)
		p.log.Info("TLS handshake failed; connection closed", "listener", listener, "filter_chain", fc.Name,
			"remote", conn.RemoteAddr().String(), "server_name", sni, "reason", reason)
		_ = conn.Close()
		return nil, false
	}
	st.handshake.Add(1)
	return tc, true
}

// connListener hands connections whose chain is already chosen (and whose TLS is already
// terminated) to a socket's http.Server, which serves them as if it had accepted them.
type connListener struct {
	addr   net.Addr
	ch     chan net.Conn
	chains sync.Map // net.Conn → *resource.FilterChain, taken by connContext

	mu     sync.Mutex
	closed bool
	done   chan struct{}
}

func newConnListener(addr net.Addr) *connListener {
	return &connListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

// push hands c over; false when the listener is closed (the caller closes c).
func (l *connListener) push(c net.Conn, fc *resource.FilterChain) bool {
	l.chains.Store(c, fc)
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		l.chains.Delete(c)
		return false
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		close(l.done)
	}
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }

// takeChain is the chain chosen for c (nil: none), forgotten: it goes to c's connValues.
func (l *connListener) takeChain(c net.Conn) *resource.FilterChain {
	if fc, ok := l.chains.LoadAndDelete(c); ok {
		return fc.(*resource.FilterChain)
	}
	return nil
}

// shutdownChains waits for a kindChains socket's connections: the HTTP server's, and
// those still being inspected or proxied as TCP.
func (s *socket) shutdownChains(ctx context.Context) error {
	err := s.shutdownHTTP(ctx) // serverloop.go
	done := make(chan struct{})
	go func() { s.tcpConns.Wait(); close(done) }()
	select {
	case <-done:
		return err
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
