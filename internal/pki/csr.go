package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
)

// MaxCSRBytes bounds the PEM a CA parses: a workload CSR is about 1 KB (RSA 4096 about
// 2 KB), so anything larger is not a CSR for a workload.
const MaxCSRBytes = 64 << 10

// NewCSR is a PEM certificate signing request for key with the given SANs (the agent puts
// its SPIFFE ID in, as Istio's does; the CA decides what the certificate carries).
func NewCSR(key crypto.Signer, uris []*url.URL, dnsNames []string) ([]byte, error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{URIs: uris, DNSNames: dnsNames}, key)
	if err != nil {
		return nil, fmt.Errorf("pki: create CSR: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// ParseCSR reads one PEM certificate signing request and checks its self-signature (the
// requester holds the key). Errors say what is wrong, never panic, whatever the input.
func ParseCSR(b []byte) (*x509.CertificateRequest, error) {
	if len(b) > MaxCSRBytes {
		return nil, fmt.Errorf("the CSR is %d bytes, more than the %d a workload CSR can be", len(b), MaxCSRBytes)
	}
	block, rest := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block: the CSR must be PEM (-----BEGIN CERTIFICATE REQUEST-----)")
	}
	if block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST" {
		return nil, fmt.Errorf("the PEM block is a %q, want CERTIFICATE REQUEST", block.Type)
	}
	if next, _ := pem.Decode(rest); next != nil {
		return nil, errors.New("more than one PEM block: send one CSR")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("malformed CSR: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("the CSR's signature does not verify with its own key: %w", err)
	}
	return csr, nil
}

// CheckPublicKey accepts the keys a mesh certificate may carry, those Envoy and Go's TLS
// both serve: RSA of 2048 to 8192 bits and ECDSA on P-256, P-384 or P-521.
func CheckPublicKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < 2048 || n > 8192 {
			return fmt.Errorf("unsupported key: RSA %d bits (use 2048 to 8192 bits, or ECDSA P-256)", n)
		}
		return nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		}
		return fmt.Errorf("unsupported key: ECDSA on curve %s (use P-256, P-384 or P-521)", k.Curve.Params().Name)
	case ed25519.PublicKey:
		return errors.New("unsupported key: Ed25519 (use ECDSA P-256 or RSA 2048: Envoy's mesh TLS does not serve Ed25519 certificates)")
	case nil:
		return errors.New("the CSR has no public key")
	}
	return fmt.Errorf("unsupported key type %T (use ECDSA P-256 or RSA 2048)", pub)
}
