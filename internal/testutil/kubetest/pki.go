package kubetest

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	lpki "github.com/lucid-mesh/lucid/internal/pki"
)

// pki is what the API server needs on disk: a CA, a serving certificate for 127.0.0.1 signed
// by it, and the service-account signing key pair.
type pki struct {
	caPEM                []byte
	servingCert, serving string // PEM file paths
	saKey, saPub         string
}

func writePKI(dir string) (*pki, error) {
	ca, err := lpki.NewRoot(lpki.RootOptions{CommonName: "lucid-kubetest-ca", Org: "lucid", Validity: 24 * time.Hour})
	if err != nil {
		return nil, fmt.Errorf("kubetest: CA: %w", err)
	}
	srv, err := ca.Issue(lpki.Template{
		CommonName: "kube-apiserver",
		DNSNames:   []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		IPs:        []net.IP{net.IPv4(127, 0, 0, 1)},
		Validity:   24 * time.Hour,
	}, lpki.ECDSAP256)
	if err != nil {
		return nil, fmt.Errorf("kubetest: serving certificate: %w", err)
	}
	srvKey, err := lpki.EncodeKey(srv.PrivateKey.(crypto.Signer))
	if err != nil {
		return nil, fmt.Errorf("kubetest: serving key: %w", err)
	}

	// Service-account tokens are signed with RS256, the algorithm every verifier supports.
	saKey, err := lpki.NewKey(lpki.RSA2048)
	if err != nil {
		return nil, fmt.Errorf("kubetest: service-account key: %w", err)
	}
	saPubDER, err := x509.MarshalPKIXPublicKey(saKey.Public())
	if err != nil {
		return nil, fmt.Errorf("kubetest: service-account key: %w", err)
	}

	p := &pki{
		caPEM:       lpki.EncodeCerts(ca.Cert),
		servingCert: filepath.Join(dir, "serving.crt"),
		serving:     filepath.Join(dir, "serving.key"),
		saKey:       filepath.Join(dir, "sa.key"),
		saPub:       filepath.Join(dir, "sa.pub"),
	}
	files := []struct {
		path string
		b    []byte
	}{
		{p.servingCert, lpki.EncodeCerts(srv.Leaf)},
		{p.serving, srvKey},
		{p.saKey, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(saKey.(*rsa.PrivateKey))})},
		{p.saPub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPubDER})},
	}
	for _, f := range files {
		if err := os.WriteFile(f.path, f.b, 0o600); err != nil {
			return nil, fmt.Errorf("kubetest: %w", err)
		}
	}
	return p, nil
}
