package up

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// AnnotationGenerateCertificate on a Gateway set to "true" makes `lucid up` create the
// certificate files its TLS servers name when they do not exist yet: a CA (ca.crt, ca.key
// beside the server certificate) and a server certificate signed by it for the server's
// hosts, localhost and the gateways' addresses. Existing files are never overwritten.
const AnnotationGenerateCertificate = "lucid.dev/generate-certificate"

// certValidity is how long generated certificates are valid.
const certValidity = 365 * 24 * time.Hour

// GeneratedCert says what EnsureCertificates wrote for one Gateway server.
type GeneratedCert struct {
	Gateway string // ns/name
	Port    uint32
	Cert    string // paths as the user sees them (relative to the working directory)
	Key     string
	CA      string
}

// EnsureCertificates creates the missing certificate files of the Gateways in objs that
// carry AnnotationGenerateCertificate. dir is the config directory objs were loaded from
// (Object.File is relative to it); ips are added to each certificate's IP SANs.
func EnsureCertificates(dir string, objs []*config.Object, ips []string) ([]GeneratedCert, error) {
	var out []GeneratedCert
	for _, o := range objs {
		gw, ok := o.Spec.(*networkingv1alpha3.Gateway)
		if !ok || o.Kind != config.KindGateway || o.Annotations[AnnotationGenerateCertificate] != "true" {
			continue
		}
		base := filepath.Join(dir, filepath.Dir(o.File))
		for i, s := range gw.GetServers() {
			t := s.GetTls()
			if t == nil || t.GetServerCertificate() == "" || t.GetPrivateKey() == "" {
				continue
			}
			if m := t.GetMode(); m != networkingv1alpha3.ServerTLSSettings_SIMPLE && m != networkingv1alpha3.ServerTLSSettings_MUTUAL {
				continue
			}
			certPath, keyPath := resolve(base, t.GetServerCertificate()), resolve(base, t.GetPrivateKey())
			if fileExists(certPath) && fileExists(keyPath) {
				continue
			}
			var hosts []string
			for _, h := range s.GetHosts() {
				if h = stripNamespace(h); h != "*" && h != "" {
					hosts = append(hosts, h)
				}
			}
			caPath := filepath.Join(filepath.Dir(certPath), "ca.crt")
			ca, err := loadOrCreateCA(caPath, filepath.Join(filepath.Dir(certPath), "ca.key"))
			if err != nil {
				return out, fmt.Errorf("%s: spec.servers[%d].tls: %w", o.Key(), i, err)
			}
			if err := writeLeaf(ca, certPath, keyPath, hosts, ips); err != nil {
				return out, fmt.Errorf("%s: spec.servers[%d].tls: %w", o.Key(), i, err)
			}
			if t.GetMode() == networkingv1alpha3.ServerTLSSettings_MUTUAL && t.GetCaCertificates() != "" {
				if p := resolve(base, t.GetCaCertificates()); !fileExists(p) {
					if err := writePEM(p, "CERTIFICATE", ca.der, 0o644); err != nil {
						return out, fmt.Errorf("%s: spec.servers[%d].tls.caCertificates: %w", o.Key(), i, err)
					}
				}
			}
			out = append(out, GeneratedCert{Gateway: o.Key(), Port: s.GetPort().GetNumber(), Cert: certPath, Key: keyPath, CA: caPath})
		}
	}
	return out, nil
}

func resolve(base, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(base, p)
}

type authority struct {
	cert *x509.Certificate
	der  []byte
	key  *ecdsa.PrivateKey
}

// loadOrCreateCA reuses the CA at certPath/keyPath or creates one there.
func loadOrCreateCA(certPath, keyPath string) (*authority, error) {
	if fileExists(certPath) && fileExists(keyPath) {
		return loadCA(certPath, keyPath)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "lucid up example CA", Organization: []string{"Lucid"}},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("creating the CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("reading back the CA certificate: %w", err)
	}
	if err := writeKey(keyPath, key); err != nil {
		return nil, err
	}
	if err := writePEM(certPath, "CERTIFICATE", der, 0o644); err != nil {
		return nil, err
	}
	return &authority{cert: cert, der: der, key: key}, nil
}

func loadCA(certPath, keyPath string) (*authority, error) {
	cb, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("reading the CA: %w", err)
	}
	kb, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("reading the CA key: %w", err)
	}
	cblock, _ := pem.Decode(cb)
	kblock, _ := pem.Decode(kb)
	if cblock == nil || kblock == nil {
		return nil, fmt.Errorf("%s or %s: no PEM block", certPath, keyPath)
	}
	cert, err := x509.ParseCertificate(cblock.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certPath, err)
	}
	key, err := x509.ParseECPrivateKey(kblock.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	return &authority{cert: cert, der: cblock.Bytes, key: key}, nil
}

// writeLeaf writes a server certificate for hosts, localhost and ips signed by ca.
func writeLeaf(ca *authority, certPath, keyPath string, hosts, ips []string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generating the server key: %w", err)
	}
	cn := "localhost"
	if len(hosts) > 0 {
		cn = hosts[0]
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"Lucid"}},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     append(append([]string{}, hosts...), "localhost"),
	}
	for _, s := range append([]string{"127.0.0.1"}, ips...) {
		if ip := net.ParseIP(s); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return fmt.Errorf("creating the server certificate: %w", err)
	}
	if err := writeKey(keyPath, key); err != nil {
		return err
	}
	return writePEM(certPath, "CERTIFICATE", der, 0o644)
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	return writePEM(path, "EC PRIVATE KEY", der, 0o600)
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	err = pem.Encode(f, &pem.Block{Type: typ, Bytes: der})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return errors.Join(fmt.Errorf("writing %s: %w", path, err), os.Remove(path))
	}
	return nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}
