package proxy

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"syscall"

	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
	"github.com/lucid-mesh/lucid/internal/dataplane/origdst"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// Transparent capture (Options.Capture: the pod's traffic is redirected by `lucid
// iptables`, Istio's REDIRECT mode). virtualOutbound and virtualInbound are then bound on
// 0.0.0.0 of their own ports (15001, 15006) instead of the local mode's sockets, and
// every connection is dispatched by its original destination (origdst), as Envoy's
// original_dst listener filter hands it over:
//
//	15001, original destination ≠ the socket's address (captured):
//	  the listener for <ip>:<port>, else 0.0.0.0_<port> (HTTP: routes by Host; TCP:
//	  tcp_proxy), else virtualOutbound's default chain (PassthroughCluster to the original
//	  destination under ALLOW_ANY, BlackHoleCluster under REGISTRY_ONLY, explained)
//	15001, addressed to the socket itself: the explicit HTTP proxy, as in local mode
//	15006: virtualInbound's chain for the original destination's port, else its default
//	  chain (InboundPassthroughCluster, from 127.0.0.6); addressed to 15006 itself:
//	  refused (Istio's virtualInbound-blackhole)
//
// HTTP chains run on the socket's HTTP server (the chain and the original destination
// travel in the connection's connValues, which the handler reads); TCP
// chains run here until the connection ends.

// captureWant is the socket a UseOriginalDst listener gets under capture.
func captureWant(name string, l *resource.Listener) want {
	return want{addr: netip.AddrPortFrom(netip.IPv4Unspecified(), l.Address.Port()), kind: kindCapture, listener: name}
}

// listenConfig sets IP_TRANSPARENT on capture sockets under TPROXY.
func (p *Proxy) listenConfig(w want) net.ListenConfig {
	var lc net.ListenConfig
	if w.kind == kindCapture && p.opts.Transparent {
		lc.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) { serr = setTransparent(int(fd)) }); err != nil {
				return err
			}
			if serr != nil {
				return fmt.Errorf("IP_TRANSPARENT (TPROXY interception needs CAP_NET_ADMIN): %w", serr)
			}
			return nil
		}
	}
	return lc
}

// listenNetwork is the socket family of a socket: capture sockets are IPv4 only (the
// capture rules are; SO_ORIGINAL_DST is read as IPv4), others as the address says.
func listenNetwork(w want) string {
	if w.kind == kindCapture {
		return "tcp4"
	}
	return "tcp"
}

// captureIndex finds the listener original_dst hands a captured outbound connection to.
type captureIndex struct {
	exact    map[netip.AddrPort]*resource.Listener // <ip>_<port>
	wildcard map[uint16]*resource.Listener         // 0.0.0.0_<port>
}

func newCaptureIndex(s *resource.Snapshot) captureIndex {
	ix := captureIndex{exact: map[netip.AddrPort]*resource.Listener{}, wildcard: map[uint16]*resource.Listener{}}
	for _, l := range s.Listeners {
		if l.BindToPort || l.Direction == resource.Inbound {
			continue
		}
		if l.Address.Addr().IsUnspecified() {
			if prev := ix.wildcard[l.Address.Port()]; prev == nil || l.Name < prev.Name {
				ix.wildcard[l.Address.Port()] = l
			}
			continue
		}
		if prev := ix.exact[l.Address]; prev == nil || l.Name < prev.Name {
			ix.exact[l.Address] = l
		}
	}
	return ix
}

// listenerFor is the outbound listener for a destination: exact address, else the port's.
func (ix captureIndex) listenerFor(dst netip.AddrPort) *resource.Listener {
	if l := ix.exact[dst]; l != nil {
		return l
	}
	return ix.wildcard[dst.Port()]
}

// captured is what the HTTP handler needs of a connection a capture socket dispatched:
// the listener and chain port it runs (kind kindExplicit for the explicit proxy) and the
// original destination.
type captured struct {
	target *want
	dst    string
	local  netip.AddrPort // the capture socket's address (with TPROXY the connection's is the destination)
}

// capturedConns hands each connection's captured value from the accept loop to the HTTP
// server's ConnContext (keys are connections pushed to a capture socket's server).
var capturedConns sync.Map

// captureConnContext adds the captured value to the connValues of a capture socket's
// connections.
func captureConnContext(srv *http.Server) {
	prev := srv.ConnContext
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		ctx = prev(ctx, c)
		cv, _ := ctx.Value(connValuesKey{}).(*connValues)
		if v, ok := capturedConns.LoadAndDelete(c); ok && cv != nil {
			cv.captured = v.(*captured)
		}
		return ctx
	}
}

// serveCaptureConn dispatches one connection accepted on a capture socket.
func (p *Proxy) serveCaptureConn(sk *socket, c net.Conn) {
	t := p.cur.Load()
	l := t.snap.Listeners[sk.target.Load().listener]
	if l == nil { // the socket outlived its listener (a config change raced this connection)
		_ = c.Close()
		return
	}
	local := addrPortOf(c.LocalAddr())
	dst, err := origdst.OriginalDst(c)
	if err != nil {
		dst = local // not redirected (and not tracked): addressed to the socket itself
	}
	// The listener's own address, for forward's loop checks: under TPROXY the
	// connection's local address is its original destination, not this socket.
	self := netip.AddrPortFrom(local.Addr(), sk.addr.Port())
	if l.Direction == resource.Inbound {
		// Every connection on 15006 was captured (with TPROXY the local address is the
		// original destination); only one addressed to the capture port itself is not.
		p.serveCapturedInbound(sk, c, t, l, dst, self)
		return
	}
	if dst == local {
		// The explicit proxy on the same port: the destination comes from each request.
		p.pushCaptured(sk, http1.NewConn(c, p.requestLimits(nil), nil), nil, &captured{target: &want{kind: kindExplicit, listener: l.Name}, local: local})
		return
	}
	in := forward.Inbound{Listener: l.Name, Direction: "outbound", LocalAddr: self, OriginalDst: dst.String(), Own: t.own}
	var fc *resource.FilterChain
	if ol := t.capture.listenerFor(dst); ol != nil {
		conn := Connection{DestinationPort: dst.Port()}
		if InspectsTLS(ol) { // sniff.go: a port whose protocol is not declared
			var ok bool
			if c, conn, ok = p.sniffCaptured(c, ol, dst); !ok {
				return
			}
		}
		fc = ChainForConnection(ol, conn)
		if fc != nil {
			in.Listener = ol.Name
		}
	}
	if fc == nil {
		fc = l.DefaultChain // PassthroughCluster or BlackHoleCluster
	}
	p.runCaptured(sk, c, t, fc, in, dst)
}

// serveCapturedInbound runs virtualInbound's chain for the original destination's port.
func (p *Proxy) serveCapturedInbound(sk *socket, c net.Conn, t *table, l *resource.Listener, dst, self netip.AddrPort) {
	remote := addrPortOf(c.RemoteAddr())
	in := forward.Inbound{Listener: l.Name, Direction: "inbound", LocalAddr: self, RemoteAddr: remote, OriginalDst: dst.String(), Own: t.own,
		OriginalSrc: p.originalSource(l, remote, dst.String())} // capture_origsrc.go: TPROXY
	if dst.Port() == self.Port() {
		// Sent to 15006 itself: passing it through would dial the socket again.
		defer c.Close()
		p.opts.Forwarder.ServeTCP(c, &resource.TCPProxy{StatPrefix: "BlackHoleCluster", Cluster: "BlackHoleCluster"}, in)
		return
	}
	c, fc, sni, ok := p.capturedInboundChain(l, c, dst.Port()) // capture_mtls.go: TLS or plaintext
	if !ok {
		return
	}
	if fc != nil && fc.TLS != nil {
		tc, ok := p.handshake(c, l.Name, fc, t.tls[fc], sni) // tls.go
		if !ok {
			return
		}
		c, in.Peer = tc, p.meshPeer(tc, fc) // mtls.go: the caller's identity, as on the per-port listeners
	}
	p.runCaptured(sk, c, t, fc, in, dst)
}

// runCaptured runs a chain for a captured connection: HTTP on the socket's server (its
// requests carry in.Peer, the mutual-TLS caller), TCP here under the chain's network
// authorization.
func (p *Proxy) runCaptured(sk *socket, c net.Conn, t *table, fc *resource.FilterChain, in forward.Inbound, dst netip.AddrPort) {
	if fc != nil && fc.HTTP != nil {
		tg := &want{kind: kindHTTP, listener: in.Listener, chainPort: uint32(dst.Port())}
		c = p.checkedConn(c, fc)
		p.rememberPeer(c, in.Peer) // mtls.go
		p.pushCaptured(sk, c, fc, &captured{target: tg, dst: in.OriginalDst, local: in.LocalAddr})
		return
	}
	defer c.Close()
	var tp *resource.TCPProxy
	if fc != nil {
		tp, in.Authz = fc.TCP, t.tcpAuthz(fc) // authz.go
	}
	p.opts.Forwarder.ServeTCP(c, tp, in)
}

// pushCaptured hands an HTTP connection to the capture socket's HTTP server.
func (p *Proxy) pushCaptured(sk *socket, c net.Conn, fc *resource.FilterChain, v *captured) {
	capturedConns.Store(c, v)
	if !sk.conns.push(c, fc) {
		capturedConns.Delete(c)
		p.forgetPeer(c)
		_ = c.Close()
	}
}
