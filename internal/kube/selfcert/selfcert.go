// Package selfcert is the control plane's own small certificate authority for the
// admission webhook: the API server must reach `lucid discovery`'s /inject over HTTPS and
// trust it through the caBundle of the MutatingWebhookConfiguration, so Lucid creates a CA,
// issues the webhook's serving certificate from it and renews that certificate before it
// expires:
//
//	Authority (CA, long-lived) ─► Rotator (serving cert, renewed) ─► tls.Config.GetCertificate
//	      └─► CA PEM ─► webhook's caBundle patcher
//
// The swap is a pointer store read by GetCertificate at each handshake, so connections
// already open keep their certificate and new ones get the new one: nothing is dropped.
package selfcert

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// Authority is a CA: its certificate and key.
type Authority struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
	keyPEM  []byte
}

// NewAuthority creates a self-signed CA valid for validity (from a minute ago, to absorb
// clock skew).
func NewAuthority(commonName string, validity time.Duration, now time.Time) (*Authority, error) {
	if validity <= 0 {
		return nil, errors.New("selfcert: CA validity must be positive")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("selfcert: CA key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"lucid"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("selfcert: sign CA: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("selfcert: encode CA key: %w", err)
	}
	return LoadAuthority(
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
}

// LoadAuthority reads a CA from PEM (as stored in a Secret by a previous run or another
// replica). The error says which part is wrong.
func LoadAuthority(certPEM, keyPEM []byte) (*Authority, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, errors.New("selfcert: CA certificate: no PEM CERTIFICATE block")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("selfcert: CA certificate: %w", err)
	}
	if !cert.IsCA {
		return nil, errors.New("selfcert: CA certificate: not a CA (basicConstraints CA:FALSE)")
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, errors.New("selfcert: CA key: no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("selfcert: CA key: %w", err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("selfcert: CA key: %T cannot sign", k)
	}
	if !publicKeysEqual(cert.PublicKey, signer.Public()) {
		return nil, errors.New("selfcert: CA key does not match the CA certificate")
	}
	return &Authority{cert: cert, key: signer, certPEM: certPEM, keyPEM: keyPEM}, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}

// CertPEM is the CA certificate (the webhook's caBundle).
func (a *Authority) CertPEM() []byte { return a.certPEM }

// KeyPEM is the CA key, for storing the CA.
func (a *Authority) KeyPEM() []byte { return a.keyPEM }

// NotAfter is when the CA expires.
func (a *Authority) NotAfter() time.Time { return a.cert.NotAfter }

// Issue signs a serving certificate for the given names, valid for validity from now (and
// never beyond the CA). The returned certificate carries its chain (leaf, CA).
func (a *Authority) Issue(dnsNames []string, ips []net.IP, validity time.Duration, now time.Time) (*tls.Certificate, error) {
	if len(dnsNames) == 0 && len(ips) == 0 {
		return nil, errors.New("selfcert: a serving certificate needs at least one DNS name or IP")
	}
	if validity <= 0 {
		return nil, errors.New("selfcert: certificate validity must be positive")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("selfcert: serving key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	notAfter := now.Add(validity)
	if notAfter.After(a.cert.NotAfter) {
		notAfter = a.cert.NotAfter
	}
	cn := ""
	if len(dnsNames) > 0 {
		cn = dnsNames[0]
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"lucid"}},
		DNSNames:     dnsNames,
		IPAddresses:  ips,
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, key.Public(), a.key)
	if err != nil {
		return nil, fmt.Errorf("selfcert: sign serving certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("selfcert: parse serving certificate: %w", err)
	}
	return &tls.Certificate{Certificate: [][]byte{der, a.cert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("selfcert: serial number: %w", err)
	}
	return n, nil
}
