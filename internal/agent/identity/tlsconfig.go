package identity

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/lucid-mesh/lucid/internal/pki/spiffe"
)

// The mutual-TLS configurations Istio's sidecars use, with the workload certificate and
// the roots read at each handshake, so renewals (of either) apply to new connections
// without touching open ones.

// ServerTLSConfig is the inbound side: the workload certificate, and a peer certificate
// required and verified against the current roots (Envoy's DownstreamTlsContext with
// require_client_certificate and the ROOTCA validation context). The peer's identity is
// not restricted here (authorization policies do that).
func (m *Manager) ServerTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: m.GetCertificate,
		ClientAuth:     tls.RequireAnyClientCert, // verified by VerifyConnection, with the roots of the moment
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := m.VerifyPeer(cs.PeerCertificates, nil)
			return err
		},
	}
}

// ClientTLSConfig is the outbound side to a peer whose certificate must carry one of
// sans as a URI SAN (Istio's subjectAltNames, e.g. the service's accounts); none accepts
// any identity the mesh roots vouch for.
func (m *Manager) ClientTLSConfig(sans ...string) *tls.Config {
	return &tls.Config{
		MinVersion:           tls.VersionTLS12,
		GetClientCertificate: m.GetClientCertificate,
		// Mesh certificates name SPIFFE identities, not host names: the chain and the SANs
		// are verified by VerifyConnection against the current roots instead.
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := m.VerifyPeer(cs.PeerCertificates, sans)
			return err
		},
	}
}

// VerifyPeer checks a peer's chain (leaf first) against the current roots and, when
// sans is not empty, that the leaf carries one of them as a URI SAN; it returns the
// peer's SPIFFE identity. Errors say what did not match.
func (m *Manager) VerifyPeer(chain []*x509.Certificate, sans []string) (spiffe.ID, error) {
	s := m.cur.Load()
	if s == nil {
		return spiffe.ID{}, errNotReady
	}
	if len(chain) == 0 {
		return spiffe.ID{}, errors.New("the peer presented no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: s.Roots, Intermediates: inter, CurrentTime: m.o.Now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return spiffe.ID{}, fmt.Errorf("the peer's certificate is not from the mesh CA: %w", err)
	}
	id, err := spiffe.FromCertificate(chain[0])
	if err != nil {
		return spiffe.ID{}, fmt.Errorf("the peer's certificate: %w", err)
	}
	if len(sans) == 0 {
		return id, nil
	}
	for _, u := range chain[0].URIs {
		if slices.Contains(sans, u.String()) {
			return id, nil
		}
	}
	return spiffe.ID{}, fmt.Errorf("the peer is %s, not one of the allowed identities (%s)", id, strings.Join(sans, ", "))
}
