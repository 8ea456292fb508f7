package proxy

import (
	"net"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// capturedInboundChain picks virtualInbound's chain for a connection captured to 15006 as
// a local-mode inbound socket picks it (serveChainConn): when the port's chains match on
// TLS (mutual TLS from other sidecars, PERMISSIVE's plaintext chain beside it), the
// ClientHello is peeked first, and STRICT's refusal of plaintext is explained. It returns
// the chain, the connection to read from (with the peeked bytes) and the server name;
// ok false: the connection was closed.
func (p *Proxy) capturedInboundChain(l *resource.Listener, c net.Conn, port uint16) (fc *resource.FilterChain, conn net.Conn, sni string, ok bool) {
	conn = c
	var hello clientHello
	if inboundPicksChain(l, uint32(port)) {
		h, buf, err := peekClientHello(c, p.opts.ListenerFiltersTimeout)
		if err != nil {
			p.log.Debug("tls inspector: closing connection", "listener", l.Name, "remote", c.RemoteAddr().String(), "error", err)
			_ = c.Close()
			return nil, nil, "", false
		}
		hello = h
		if len(buf) > 0 {
			conn = &prefixConn{Conn: c, prefix: buf}
		}
	}
	fc = ChainForConnection(l, Connection{DestinationPort: port, ServerName: hello.serverName, TransportProtocol: hello.transportProtocol(), ApplicationProtocols: hello.alpn})
	if (fc == nil || fc == l.DefaultChain) && p.refusePlaintext(l, port, c, hello.transportProtocol()) { // mtls.go: STRICT
		_ = c.Close()
		return nil, nil, "", false
	}
	return fc, conn, hello.serverName, true
}
