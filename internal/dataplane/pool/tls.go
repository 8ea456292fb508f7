package pool

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// Upstream TLS: a cluster's transport socket (or the transport_socket_matches entry of
// the endpoint, Istio's auto mTLS) makes the pool's connections to that endpoint TLS.
// The caller (the agent) decides the configuration per new connection, so the workload
// certificate of the moment is used and a renewal never touches open connections.

// UpstreamTLS returns the TLS configuration of a new connection to addr in cluster; nil
// is plaintext. An error fails the connection attempt (a cluster that needs a workload
// certificate in a sidecar without one).
type UpstreamTLS func(cluster, addr string) (*tls.Config, error)

// SetUpstreamTLS sets how new connections decide on TLS (nil: every connection plaintext).
func (s *Set) SetUpstreamTLS(f UpstreamTLS) {
	if f == nil {
		s.upTLS.Store(nil)
		return
	}
	s.upTLS.Store(&f)
}

// secure runs the TLS handshake on a new connection when the cluster's transport asks
// for it. A failed handshake is a connection failure (Envoy's UF) with Envoy's TLS
// transport failure reason and an explanation of what did not match.
// Under Istio's mutual TLS the pools' connections say they carry HTTP, as Istio's
// istio.alpn filter does: "istio-http/1.1" ("istio-h2" for an HTTP/2 cluster) offered first,
// so that the server sidecar's HTTP chain of a port without a declared protocol takes them
// (its TCP chain takes the rest).
func (p *Pool) secure(ctx context.Context, c net.Conn, addr string) (net.Conn, error) {
	alpn := "istio-http/1.1"
	if p.settings.protocol == resource.HTTP2 {
		alpn = "istio-h2"
	}
	return secure(ctx, p.upTLS, p.name, addr, c, alpn)
}

// Secure gives c, a connection to addr of cluster made outside the pools (tcp_proxy,
// CONNECT tunnels, upgrades), the TLS the pools' connections get: the cluster's (or the
// endpoint's auto mTLS) transport socket; c unchanged when plaintext. Errors are
// *ConnectError, as the pools'; c is closed then.
func (s *Set) Secure(ctx context.Context, cluster, addr string, c net.Conn) (net.Conn, error) {
	return secure(ctx, &s.upTLS, cluster, addr, c, "")
}

// secure runs the handshake; httpALPN, when set, is offered first on Istio's mutual TLS
// (whose ALPN has "istio").
func secure(ctx context.Context, ref *upstreamTLSRef, cluster, addr string, c net.Conn, httpALPN string) (net.Conn, error) {
	if ref == nil {
		return c, nil
	}
	f := ref.Load()
	if f == nil {
		return c, nil
	}
	cfg, err := (*f)(cluster, addr)
	if err != nil {
		_ = c.Close()
		return nil, &ConnectError{Addr: addr, Reason: ReasonLocalConnectionFailure, Transport: "TLS_error:|no client certificate:TLS_error_end", Explain: err.Error(), Err: err}
	}
	if cfg == nil {
		return c, nil
	}
	if httpALPN != "" && slices.Contains(cfg.NextProtos, "istio") {
		cfg = cfg.Clone() // the decision's configuration may be shared
		cfg.NextProtos = append([]string{httpALPN}, cfg.NextProtos...)
	}
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = c.Close()
		return nil, tlsConnectError(addr, cfg, err)
	}
	return tc, nil
}

// TLSOf is the TLS connection under c, a connection the pool handed to a ConnObserver or
// Secure returned; nil when c is plaintext.
func TLSOf(c net.Conn) *tls.Conn {
	if cc, ok := c.(*countedConn); ok {
		c = cc.Conn
	}
	tc, _ := c.(*tls.Conn)
	return tc
}

// tlsConnectError classifies a failed client handshake as Envoy reports it
// (transport failure reason "TLS_error:|<code>:SSL routines:OPENSSL_internal:<name>:TLS_error_end")
// and explains it.
func tlsConnectError(addr string, cfg *tls.Config, err error) *ConnectError {
	ce := &ConnectError{Addr: addr, Reason: ReasonRemoteConnectionFailure, Err: err}
	var rh tls.RecordHeaderError
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	var cv *tls.CertificateVerificationError
	var errno syscall.Errno
	name := "server " + addr
	if cfg.ServerName != "" {
		name += " (SNI " + cfg.ServerName + ")"
	}
	switch {
	case errors.As(err, &rh):
		ce.Transport = "TLS_error:|268435703:SSL routines:OPENSSL_internal:WRONG_VERSION_NUMBER:TLS_error_end"
		ce.Explain = "TLS handshake failed: " + name + " answered in plaintext, not TLS (it has no sidecar, or its PeerAuthentication is DISABLE; a DestinationRule tls.mode DISABLE, or the endpoint without security.istio.io/tlsMode: istio, sends plaintext)"
	case errors.As(err, &ua), errors.As(err, &ci), errors.As(err, &cv), strings.Contains(err.Error(), "not from the mesh CA"),
		strings.Contains(err.Error(), "not one of the allowed identities"), strings.Contains(err.Error(), "peer presented no certificate"):
		ce.Transport = "TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:TLS_error_end"
		ce.Explain = "TLS handshake failed: the certificate of " + name + " was rejected: " + err.Error()
	case errors.Is(err, io.EOF), errors.As(err, &errno) && (errno == syscall.ECONNRESET || errno == syscall.EPIPE):
		ce.Transport = "TLS_error:|268435648:SSL routines:OPENSSL_internal:Connection reset by peer:TLS_error_end"
		ce.Explain = "TLS handshake failed: " + name + " closed the connection during the handshake (it refused this client's certificate or protocol): " + err.Error()
	default:
		ce.Transport = "TLS_error:|" + strings.TrimPrefix(err.Error(), "tls: ") + ":TLS_error_end"
		ce.Explain = "TLS handshake with " + name + " failed: " + err.Error()
	}
	return ce
}

// upstreamTLSRef is the Set's resolver, shared with its pools.
type upstreamTLSRef = atomic.Pointer[UpstreamTLS]

// transportKey sums up a cluster's transport sockets, so that a cluster whose TLS changes
// gets a new pool (connections made with the old settings are not reused) while an
// update that keeps them keeps the connections.
func transportKey(c *resource.Cluster) string {
	if c.TLS == nil && len(c.TLSMatches) == 0 {
		return ""
	}
	var b strings.Builder
	one := func(u *resource.UpstreamTLS) {
		if u == nil {
			b.WriteString("plain;")
			return
		}
		fmt.Fprintf(&b, "sni=%s alpn=%v cert=%s/%d val=%s/%s v=%d-%d sans=", u.SNI, u.ALPN, u.CertificateSDS, len(u.Certificates), u.ValidationSDS, u.TrustedCA.Where(), u.MinVersion, u.MaxVersion)
		for _, s := range u.SANs {
			fmt.Fprintf(&b, "%d:%d:%s,", s.Type, s.Matcher.Kind, s.Matcher.Value)
		}
		b.WriteString(";")
	}
	one(c.TLS)
	for _, m := range c.TLSMatches {
		fmt.Fprintf(&b, "match %s %v:", m.Name, m.Match)
		one(m.TLS)
	}
	return b.String()
}
