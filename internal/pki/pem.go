package pki

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// Istio's file names of a CA (the keys of the `cacerts` and `istio-ca-secret` Secrets).
const (
	FileCACert    = "ca-cert.pem"    // the signing certificate
	FileCAKey     = "ca-key.pem"     // its key
	FileCertChain = "cert-chain.pem" // the chain from the signing certificate towards the root
	FileRootCert  = "root-cert.pem"  // the roots peers trust
)

// Files is a CA in PEM under Istio's file names. CertChain may be empty (a root signs
// directly), and RootCert too when CACert is itself the root.
type Files struct {
	CACert, CAKey, CertChain, RootCert []byte
}

// Files returns the authority in PEM for storing it.
func (a *Authority) Files() (Files, error) {
	key, err := EncodeKey(a.Key)
	if err != nil {
		return Files{}, err
	}
	return Files{
		CACert:    EncodeCerts(a.Cert),
		CAKey:     key,
		CertChain: EncodeCerts(a.Chain...),
		RootCert:  EncodeCerts(a.Roots...),
	}, nil
}

// LoadAuthority reads a CA from its files and checks it as Istio does before signing with
// it: the certificate is a CA, the key is its key, and it chains to a root in RootCert
// through CertChain. Without RootCert the CA certificate must be a root itself. The error
// names the file at fault.
func LoadAuthority(f Files) (*Authority, error) {
	certs, err := ParseCerts(f.CACert)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", FileCACert, err)
	}
	cert := certs[0]
	if !cert.IsCA {
		return nil, fmt.Errorf("%s: not a CA certificate (basicConstraints CA:FALSE): it cannot sign certificates", FileCACert)
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("%s: its key usage does not allow signing certificates (keyCertSign)", FileCACert)
	}
	key, err := ParseKey(f.CAKey)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", FileCAKey, err)
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, fmt.Errorf("%s does not belong to %s (the public keys differ)", FileCAKey, FileCACert)
	}
	a := &Authority{Cert: cert, Key: key}
	if len(bytes.TrimSpace(f.CertChain)) > 0 {
		if a.Chain, err = ParseCerts(f.CertChain); err != nil {
			return nil, fmt.Errorf("%s: %w", FileCertChain, err)
		}
	}
	if len(bytes.TrimSpace(f.RootCert)) > 0 {
		if a.Roots, err = ParseCerts(f.RootCert); err != nil {
			return nil, fmt.Errorf("%s: %w", FileRootCert, err)
		}
	} else {
		if !IsSelfSigned(cert) {
			return nil, fmt.Errorf("%s is missing: %s is not self-signed, so the root it chains to is needed", FileRootCert, FileCACert)
		}
		a.Roots = []*x509.Certificate{cert}
	}
	inter := x509.NewCertPool()
	for _, c := range a.Chain {
		inter.AddCert(c)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: a.RootPool(), Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("%s does not chain to %s through %s: %w", FileCACert, FileRootCert, FileCertChain, err)
	}
	return a, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}

// EncodeCerts is certs in PEM, one CERTIFICATE block each.
func EncodeCerts(certs ...*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes()
}

// EncodeKey is key in PEM (PKCS #8, "PRIVATE KEY").
func EncodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("pki: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseCerts reads every CERTIFICATE block of a PEM bundle; at least one is required.
// Text between blocks (openssl's "subject=" lines) is ignored; another block type is an
// error naming its position.
func ParseCerts(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for n := 1; ; n++ {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %d is a %q, want CERTIFICATE", n, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	return out, nil
}

// ParseKey reads a private key in PEM: PKCS #8 ("PRIVATE KEY"), PKCS #1 ("RSA PRIVATE
// KEY") or SEC 1 ("EC PRIVATE KEY"), the forms openssl, Istio and cert-manager write.
func ParseKey(b []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	var (
		k   any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key (want PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", block.Type, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("a %T key cannot sign", k)
	}
	return s, nil
}
