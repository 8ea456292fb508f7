package http1

import (
	"crypto/tls"
	"net"
)

// NewMeshConn is NewConn for a mutual-TLS connection between sidecars. As Envoy's AUTO
// codec does, HTTP/2 with prior knowledge is accepted inside TLS when ALPN chose no
// HTTP protocol: Istio's clients offer the mesh's own ALPNs (istio-peer-exchange, istio)
// and then speak whichever protocol their cluster uses.
func NewMeshConn(c net.Conn, lim Limits, tlsState *tls.ConnectionState) *Conn {
	g := NewConn(c, lim, tlsState)
	g.st = stStart
	return g
}
