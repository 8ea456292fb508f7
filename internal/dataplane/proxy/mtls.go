package proxy

import (
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// Mutual TLS between sidecars, the inbound side. A sidecar's inbound port whose chains
// terminate TLS with the workload certificate (SDS "default", PeerAuthentication STRICT
// or PERMISSIVE) picks its chain per connection like a router's listener (gateway.go):
// the TLS inspector reads the first bytes, a ClientHello goes to the mutual-TLS chain and
// plaintext to the raw_buffer chain when there is one (PERMISSIVE), else it is refused
// (STRICT: closed, as Istio resets it, logged and counted with the reason).

// MTLS is the workload identity the sidecar's mutual TLS uses, with SDS semantics: the
// certificate and the roots of the moment at each handshake (internal/agent/identity).
type MTLS interface {
	// ServerTLSConfig requires and verifies a mesh client certificate.
	ServerTLSConfig() *tls.Config
	// ClientTLSConfig verifies the server against the mesh roots and, when sans is not
	// empty, that it is one of those SPIFFE identities.
	ClientTLSConfig(sans ...string) *tls.Config
}

// meshALPN are the protocols Istio's clients offer on mutual TLS (the first is the
// metadata exchange); an inbound mutual-TLS chain accepts them besides its own.
var meshALPN = []string{"istio-peer-exchange", "istio-http/1.0", "istio-http/1.1", "istio-h2", "istio"}

// errNoIdentity is a chain that needs the workload certificate in a sidecar without one.
var errNoIdentity = errors.New(`the workload certificate (SDS "default") is not available: the sidecar runs without a CA (--ca-address)`)

// chainServerTLS is a chain's server configuration: the workload identity's for SDS,
// else from the files, reloaded when they change (tls_reload.go).
func chainServerTLS(d *resource.DownstreamTLS, m MTLS, log *slog.Logger, listener, chain string) (*tls.Config, error) {
	if d.CertificateSDS == "" {
		return fileChainTLS(d, log, listener, chain)
	}
	if m == nil {
		return nil, errNoIdentity
	}
	cfg := m.ServerTLSConfig()
	cfg.NextProtos = append(slices.Clone(d.ALPN), meshALPN...)
	if v, ok := tlsVersions[d.MinVersion]; ok {
		cfg.MinVersion = v
	}
	if v, ok := tlsVersions[d.MaxVersion]; ok {
		cfg.MaxVersion = v
	}
	verify := cfg.VerifyConnection
	switch {
	case d.ValidationSDS == "": // no validation context: the client's certificate is not asked for
		cfg.ClientAuth, cfg.VerifyConnection = tls.NoClientCert, nil
	case !d.RequireClientCertificate:
		cfg.ClientAuth = tls.RequestClientCert
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return nil
			}
			return verify(cs)
		}
	}
	if sans := d.SANs; len(sans) > 0 && cfg.VerifyConnection != nil {
		inner := cfg.VerifyConnection
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if err := inner(cs); err != nil || len(cs.PeerCertificates) == 0 {
				return err
			}
			return verifySAN(cs.PeerCertificates[0], sans)
		}
	}
	return cfg, nil
}

// inboundPicksChain reports whether a sidecar's inbound port picks its chain per
// connection: one of its chains terminates TLS or matches on the transport protocol.
func inboundPicksChain(l *resource.Listener, port uint32) bool {
	for _, fc := range l.FilterChains {
		if fc.Match.DestinationPort == port && (fc.TLS != nil || fc.Match.TransportProtocol != "") {
			return true
		}
	}
	return false
}

// plaintextRefusals counts plaintext connections refused by a mutual-TLS-only port
// (mtls.plaintext_refused).
type plaintextRefusals struct{ n atomic.Uint64 }

// refusePlaintext explains a connection no chain takes when the port only takes mutual
// TLS (PeerAuthentication STRICT); it reports whether it did.
func (p *Proxy) refusePlaintext(l *resource.Listener, port uint16, c net.Conn, transport string) bool {
	if transport == "tls" || l.Direction != resource.Inbound {
		return false
	}
	var strict *resource.FilterChain
	for i := range l.FilterChains {
		if fc := &l.FilterChains[i]; fc.Match.DestinationPort == uint32(port) && fc.TLS != nil && fc.TLS.CertificateSDS != "" {
			strict = fc
			break
		}
	}
	if strict == nil {
		return false
	}
	p.mtlsRefused.n.Add(1)
	policy := strict.PeerAuthentication
	if policy == "" {
		policy = "the mesh default"
	}
	p.log.Info("plaintext connection refused: the port requires mutual TLS (PeerAuthentication STRICT); the client must send Istio mTLS (a sidecar with auto mTLS or DestinationRule tls.mode ISTIO_MUTUAL)",
		"listener", l.Name, "port", port, "remote", c.RemoteAddr().String(), "peer_authentication", policy, "mode", strict.MTLSMode)
	return true
}

// EachMTLSStat emits the sidecar's mutual-TLS counters.
func (p *Proxy) EachMTLSStat(emit func(name string, value uint64)) {
	emit("mtls.plaintext_refused", p.mtlsRefused.n.Load())
}

// peers holds the verified peer of each mutual-TLS connection handed to a socket's HTTP
// server until its ConnContext takes it (takePeer) into the connection's connValues.
type peers struct{ m sync.Map } // net.Conn → *forward.Peer

// meshPeer is the verified peer of a connection whose chain terminated mutual TLS with the
// workload certificate (tc its TLS); nil for any other connection.
func (p *Proxy) meshPeer(tc *tls.Conn, fc *resource.FilterChain) *forward.Peer {
	if tc == nil || fc == nil || fc.TLS == nil || fc.TLS.CertificateSDS == "" {
		return nil
	}
	cs := tc.ConnectionState()
	if len(cs.PeerCertificates) == 0 {
		return nil
	}
	leaf := cs.PeerCertificates[0]
	peer := &forward.Peer{Hash: fmt.Sprintf("%x", sha256.Sum256(leaf.Raw))}
	if len(leaf.URIs) > 0 {
		peer.URI = leaf.URIs[0].String()
	}
	if m := p.opts.MTLS; m != nil {
		if own, err := m.ServerTLSConfig().GetCertificate(nil); err == nil && own != nil && own.Leaf != nil && len(own.Leaf.URIs) > 0 {
			peer.Local = own.Leaf.URIs[0].String()
		}
	}
	return peer
}

// rememberPeer records the verified peer (meshPeer) of an HTTP connection about to be
// handed to its socket's HTTP server; the handler gives it to forward with each of the
// connection's requests (forward.Inbound.Peer).
func (p *Proxy) rememberPeer(conn net.Conn, peer *forward.Peer) {
	if peer != nil {
		p.peers.m.Store(conn, peer)
	}
}

// forgetPeer drops the record of a connection the HTTP server never took.
func (p *Proxy) forgetPeer(conn net.Conn) { p.peers.m.Delete(conn) }

// takePeer is the peer rememberPeer recorded for c (nil: none), forgotten: it goes to
// c's connValues.
func (p *Proxy) takePeer(c net.Conn) *forward.Peer {
	if v, ok := p.peers.m.LoadAndDelete(c); ok {
		return v.(*forward.Peer)
	}
	return nil
}
