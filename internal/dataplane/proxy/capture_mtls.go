package proxy

import (
	"net"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// capturedInboundChain picks virtualInbound's chain for a connection captured to port as
// the sidecar's own inbound listeners do: when the port's chains tell mutual TLS from
// plaintext (PeerAuthentication), the TLS inspector reads the first bytes (replayed in the
// returned connection), and a plaintext connection to a STRICT port is refused and
// explained. Without it, a captured mTLS connection matched no chain and was passed
// through to the app still encrypted. ok false: the connection was closed.
func (p *Proxy) capturedInboundChain(l *resource.Listener, c net.Conn, port uint16) (conn net.Conn, fc *resource.FilterChain, sni string, ok bool) {
	conn, in := c, Connection{DestinationPort: port}
	if inboundPicksChain(l, uint32(port)) { // mtls.go
		var err error
		if conn, in, err = p.inspectInbound(l, c, port); err != nil { // sniff.go: TLS, and HTTP on an undeclared port
			p.log.Debug("inspecting the connection: closing it", "listener", l.Name, "remote", c.RemoteAddr().String(), "error", err)
			_ = c.Close()
			return nil, nil, "", false
		}
	}
	fc = ChainForConnection(l, in)
	if (fc == nil || fc == l.DefaultChain) && p.refusePlaintext(l, port, c, in.TransportProtocol) { // mtls.go: STRICT
		_ = c.Close()
		return nil, nil, "", false
	}
	return conn, fc, in.ServerName, true
}
