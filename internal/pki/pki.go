// Package pki mints and reads the X.509 material of every Lucid component that needs
// certificates. It is a leaf (standard library only), so both planes may use it:
//
//	NewRoot / LoadAuthority ─► Authority ─► Sign (a CSR's public key: the mesh CA)
//	                                    └─► Issue (a new key + certificate: serving certificates)
//	NewKey ─► NewCSR ─► (CA) ─► the agent's workload certificate
//	Rotator: a serving certificate renewed before expiry, read through tls.Config.GetCertificate
//
// Files carries a CA under Istio's file names (ca-cert.pem, ca-key.pem, cert-chain.pem,
// root-cert.pem), the format of Istio's `cacerts` and `istio-ca-secret` Secrets.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"time"
)

// ClockSkew is how far back a new certificate's NotBefore is set, so that a peer whose
// clock is a little behind accepts it (Istio's ClockSkewGracePeriod).
const ClockSkew = 2 * time.Minute

// KeyType is the algorithm of a generated key.
type KeyType int

// Key types. The zero value is ECDSA P-256, the cheapest to sign and verify with.
const (
	ECDSAP256 KeyType = iota
	RSA2048           // Istio's default workload key (WORKLOAD_RSA_KEY_SIZE)
)

func (k KeyType) String() string {
	switch k {
	case ECDSAP256:
		return "ECDSA P-256"
	case RSA2048:
		return "RSA 2048"
	}
	return fmt.Sprintf("KeyType(%d)", int(k))
}

// NewKey generates a private key of type k.
func NewKey(k KeyType) (crypto.Signer, error) {
	switch k {
	case ECDSAP256:
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("pki: generate %s key: %w", k, err)
		}
		return key, nil
	case RSA2048:
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("pki: generate %s key: %w", k, err)
		}
		return key, nil
	}
	return nil, fmt.Errorf("pki: unknown key type %d", int(k))
}

// Authority is a certificate authority: the certificate and key that sign, the
// intermediates between it and a root (empty when it is the root), and the roots that
// peers trust.
type Authority struct {
	Cert  *x509.Certificate
	Key   crypto.Signer
	Chain []*x509.Certificate // cert-chain.pem: as the operator gave it (Istio's order: signing certificate first)
	Roots []*x509.Certificate // root-cert.pem: the trust anchors
}

// RootOptions configure NewRoot.
type RootOptions struct {
	// Org is the subject's organisation; Istio uses the trust domain. CommonName is optional.
	Org, CommonName string
	Validity        time.Duration // required
	Now             time.Time     // default time.Now()
	KeyType         KeyType
}

// NewRoot creates a self-signed root CA.
func NewRoot(o RootOptions) (*Authority, error) { return newCA(o, nil) }

// NewIntermediate creates a CA signed by a, laid out as Istio's plugged-in cacerts:
// Chain (cert-chain.pem) is the new certificate, a's intermediates and the roots; Roots
// are a's. It is what an operator's own CA hands Lucid (and what tests plug in).
func (a *Authority) NewIntermediate(o RootOptions) (*Authority, error) { return newCA(o, a) }

// newCA creates a CA certificate and key, self-signed without a parent.
func newCA(o RootOptions, parent *Authority) (*Authority, error) {
	if o.Validity <= 0 {
		return nil, errors.New("pki: a CA's validity must be positive")
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	key, err := NewKey(o.KeyType)
	if err != nil {
		return nil, err
	}
	serial, err := SerialNumber()
	if err != nil {
		return nil, err
	}
	subject := pkix.Name{CommonName: o.CommonName}
	if o.Org != "" {
		subject.Organization = []string{o.Org}
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subject,
		NotBefore:             o.Now.Add(-ClockSkew),
		NotAfter:              o.Now.Add(o.Validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	issuer, signer := tmpl, crypto.Signer(key)
	if parent != nil {
		issuer, signer = parent.Cert, parent.Key
		if tmpl.NotAfter.After(parent.Cert.NotAfter) {
			tmpl.NotAfter = parent.Cert.NotAfter
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), signer)
	if err != nil {
		return nil, fmt.Errorf("pki: sign the CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: read back the CA certificate: %w", err)
	}
	if parent == nil {
		return &Authority{Cert: cert, Key: key, Roots: []*x509.Certificate{cert}}, nil
	}
	chain := append(append([]*x509.Certificate{cert}, parent.Intermediates()...), parent.Roots...)
	return &Authority{Cert: cert, Key: key, Chain: chain, Roots: parent.Roots}, nil
}

// Usage is what a leaf certificate may be used for.
type Usage int

// Usages; a workload certificate is both (mutual TLS).
const (
	ServerAuth Usage = 1 << iota
	ClientAuth
)

// Template describes a leaf certificate. At least one of DNSNames, IPs and URIs is
// required. With an empty subject (no CommonName) the SAN extension is marked critical,
// as RFC 5280 requires and Istio's workload certificates are.
type Template struct {
	CommonName string
	DNSNames   []string
	IPs        []net.IP
	URIs       []*url.URL
	Usage      Usage         // default ServerAuth
	Validity   time.Duration // required; the certificate never outlives the authority
	Now        time.Time     // default time.Now()
}

// Sign issues a certificate for pub (a CSR's key, or one Issue made). The error says what
// is wrong with the template or the authority.
func (a *Authority) Sign(pub crypto.PublicKey, t Template) (*x509.Certificate, error) {
	if len(t.DNSNames) == 0 && len(t.IPs) == 0 && len(t.URIs) == 0 {
		return nil, errors.New("pki: a certificate needs at least one DNS name, IP or URI")
	}
	if t.Validity <= 0 {
		return nil, errors.New("pki: certificate validity must be positive")
	}
	if t.Now.IsZero() {
		t.Now = time.Now()
	}
	if !t.Now.Before(a.Cert.NotAfter) {
		return nil, fmt.Errorf("pki: the signing certificate expired at %s", a.Cert.NotAfter.UTC().Format(time.RFC3339))
	}
	serial, err := SerialNumber()
	if err != nil {
		return nil, err
	}
	notAfter := t.Now.Add(t.Validity)
	if notAfter.After(a.Cert.NotAfter) {
		notAfter = a.Cert.NotAfter
	}
	usage := t.Usage
	if usage == 0 {
		usage = ServerAuth
	}
	var ext []x509.ExtKeyUsage
	if usage&ServerAuth != 0 {
		ext = append(ext, x509.ExtKeyUsageServerAuth)
	}
	if usage&ClientAuth != 0 {
		ext = append(ext, x509.ExtKeyUsageClientAuth)
	}
	ku := x509.KeyUsageDigitalSignature
	if _, ok := pub.(*rsa.PublicKey); ok {
		ku |= x509.KeyUsageKeyEncipherment // RSA key exchange (TLS 1.2 without ECDHE)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: t.CommonName},
		DNSNames:              t.DNSNames,
		IPAddresses:           t.IPs,
		URIs:                  t.URIs,
		NotBefore:             t.Now.Add(-ClockSkew),
		NotAfter:              notAfter,
		KeyUsage:              ku,
		ExtKeyUsage:           ext,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.Cert, pub, a.Key)
	if err != nil {
		return nil, fmt.Errorf("pki: sign: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: read back the certificate: %w", err)
	}
	return cert, nil
}

// Issue generates a key of type k and a certificate for it: a serving or client
// certificate ready for tls.Config, carrying its chain up to (not including) the root.
func (a *Authority) Issue(t Template, k KeyType) (*tls.Certificate, error) {
	key, err := NewKey(k)
	if err != nil {
		return nil, err
	}
	cert, err := a.Sign(key.Public(), t)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: ServingChain(cert, a.Intermediates()), PrivateKey: key, Leaf: cert}, nil
}

// Intermediates are the certificates between a leaf this authority signs and a root:
// the signing certificate (unless it is a root) and the chain's other non-root
// certificates, without duplicates.
func (a *Authority) Intermediates() []*x509.Certificate {
	var out []*x509.Certificate
	seen := map[string]bool{}
	for _, c := range append([]*x509.Certificate{a.Cert}, a.Chain...) {
		if IsSelfSigned(c) || seen[string(c.Raw)] {
			continue
		}
		seen[string(c.Raw)] = true
		out = append(out, c)
	}
	return out
}

// ServingChain is the DER chain a TLS peer presents: the leaf, then the intermediates
// (roots are left out: the other side has them).
func ServingChain(leaf *x509.Certificate, intermediates []*x509.Certificate) [][]byte {
	out := [][]byte{leaf.Raw}
	for _, c := range intermediates {
		if !IsSelfSigned(c) {
			out = append(out, c.Raw)
		}
	}
	return out
}

// IsSelfSigned reports whether c is a root: its subject is its issuer and its own key
// verifies its signature.
func IsSelfSigned(c *x509.Certificate) bool {
	return string(c.RawSubject) == string(c.RawIssuer) && c.CheckSignatureFrom(c) == nil
}

// RootPool is a certificate pool of the authority's roots.
func (a *Authority) RootPool() *x509.CertPool {
	p := x509.NewCertPool()
	for _, r := range a.Roots {
		p.AddCert(r)
	}
	return p
}

// SerialNumber is a random positive 128-bit serial number (RFC 5280 allows at most 20
// octets; 16 random bytes make collisions impossible in practice).
func SerialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("pki: serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil // never zero
}
