// Package selfcert is the control plane's own small certificate authority for the
// admission webhook: the API server must reach `lucid discovery`'s /inject over HTTPS and
// trust it through the caBundle of the MutatingWebhookConfiguration, so Lucid creates a CA,
// issues the webhook's serving certificate from it and renews that certificate before it
// expires:
//
//	Authority (CA, long-lived) ─► Rotator (serving cert, renewed) ─► tls.Config.GetCertificate
//	      └─► CA PEM ─► webhook's caBundle patcher
//
// The certificates are minted by internal/pki, as every certificate Lucid makes; this
// package keeps the webhook's view of it: one CA in PEM (as stored in a Secret), serving
// names, a lifetime.
package selfcert

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/lucid-mesh/lucid/internal/pki"
)

// Authority is a CA: its certificate and key, and their PEM.
type Authority struct {
	ca      *pki.Authority
	certPEM []byte
	keyPEM  []byte
}

// NewAuthority creates a self-signed CA valid for validity (from pki.ClockSkew ago, to
// absorb clock skew).
func NewAuthority(commonName string, validity time.Duration, now time.Time) (*Authority, error) {
	if validity <= 0 {
		return nil, errors.New("selfcert: CA validity must be positive")
	}
	ca, err := pki.NewRoot(pki.RootOptions{Org: "lucid", CommonName: commonName, Validity: validity, Now: now})
	if err != nil {
		return nil, fmt.Errorf("selfcert: %w", err)
	}
	f, err := ca.Files()
	if err != nil {
		return nil, fmt.Errorf("selfcert: %w", err)
	}
	return &Authority{ca: ca, certPEM: f.CACert, keyPEM: f.CAKey}, nil
}

// LoadAuthority reads a CA from PEM (as stored in a Secret by a previous run or another
// replica). The error says which part is wrong.
func LoadAuthority(certPEM, keyPEM []byte) (*Authority, error) {
	ca, err := pki.LoadAuthority(pki.Files{CACert: certPEM, CAKey: keyPEM})
	if err != nil {
		return nil, fmt.Errorf("selfcert: CA: %w", err)
	}
	return &Authority{ca: ca, certPEM: certPEM, keyPEM: keyPEM}, nil
}

// CertPEM is the CA certificate (the webhook's caBundle).
func (a *Authority) CertPEM() []byte { return a.certPEM }

// KeyPEM is the CA key, for storing the CA.
func (a *Authority) KeyPEM() []byte { return a.keyPEM }

// NotAfter is when the CA expires.
func (a *Authority) NotAfter() time.Time { return a.ca.Cert.NotAfter }

// Issue signs a serving certificate for the given names, valid for validity from now (and
// never beyond the CA).
func (a *Authority) Issue(dnsNames []string, ips []net.IP, validity time.Duration, now time.Time) (*tls.Certificate, error) {
	if len(dnsNames) == 0 && len(ips) == 0 {
		return nil, errors.New("selfcert: a serving certificate needs at least one DNS name or IP")
	}
	cn := ""
	if len(dnsNames) > 0 {
		cn = dnsNames[0]
	}
	c, err := a.ca.Issue(pki.Template{CommonName: cn, DNSNames: dnsNames, IPs: ips, Validity: validity, Now: now}, pki.ECDSAP256)
	if err != nil {
		return nil, fmt.Errorf("selfcert: serving certificate: %w", err)
	}
	return c, nil
}
