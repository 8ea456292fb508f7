package proxy

import (
	"net"

	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// serveTCP runs a tcp_proxy chain: each accepted connection is handed to forward's
// tcp_proxy (forward.ServeTCP) with the chain.
func (p *Proxy) serveTCP(sk *socket) error {
	return sk.acceptEach(func(c net.Conn) { p.pipeTCP(sk, c) })
}

func (p *Proxy) pipeTCP(sk *socket, down net.Conn) {
	defer down.Close()
	t := p.cur.Load()
	tg := sk.target.Load()
	l := t.snap.Listeners[tg.listener]
	var tp *resource.TCPProxy
	in := forward.Inbound{Listener: tg.listener, Direction: direction(l), OriginalDst: sk.dst, Own: t.own}
	if l != nil {
		if fc := ChainFor(l, tg.chainPort); fc != nil {
			tp, in.Authz = fc.TCP, t.tcpAuthz(fc) // authz.go
		}
	}
	p.opts.Forwarder.ServeTCP(down, tp, in)
}
