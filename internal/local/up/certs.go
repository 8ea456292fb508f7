package up

import (
	"crypto"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/pki"
)

// AnnotationGenerateCertificate on a Gateway set to "true" makes `lucid up` create the
// certificate files its TLS servers name when they do not exist yet: a CA (ca.crt, ca.key
// beside the server certificate) and a server certificate signed by it for the server's
// hosts, localhost and the gateways' addresses; for a credentialName, in the config
// directory's credentials/<name>/ (tls.crt, tls.key, ca.crt). Existing files are never
// overwritten.
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
			if m := t.GetMode(); m != networkingv1alpha3.ServerTLSSettings_SIMPLE && m != networkingv1alpha3.ServerTLSSettings_MUTUAL {
				continue
			}
			var certPath, keyPath string
			switch {
			case t.GetServerCertificate() != "" && t.GetPrivateKey() != "":
				certPath, keyPath = resolve(base, t.GetServerCertificate()), resolve(base, t.GetPrivateKey())
			case t.GetCredentialName() != "":
				// credentials/<name>/tls.crt, tls.key and ca.crt (config.FindCredential):
				// the CA is MUTUAL's client CA too, as caCertificates is below.
				f, ok := config.FindCredential(dir, t.GetCredentialName())
				if ok {
					continue
				}
				certPath, keyPath = filepath.Join(f.Dir, "tls.crt"), filepath.Join(f.Dir, "tls.key")
			default:
				continue
			}
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
					if err := writeFile(p, pki.EncodeCerts(ca.Cert), 0o644); err != nil {
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

// loadOrCreateCA reuses the CA at certPath/keyPath or creates one there.
func loadOrCreateCA(certPath, keyPath string) (*pki.Authority, error) {
	if fileExists(certPath) && fileExists(keyPath) {
		return loadCA(certPath, keyPath)
	}
	ca, err := pki.NewRoot(pki.RootOptions{Org: "Lucid", CommonName: "lucid up example CA", Validity: certValidity})
	if err != nil {
		return nil, fmt.Errorf("creating the CA: %w", err)
	}
	key, err := pki.EncodeKey(ca.Key)
	if err != nil {
		return nil, err
	}
	if err := writeFile(keyPath, key, 0o600); err != nil {
		return nil, err
	}
	if err := writeFile(certPath, pki.EncodeCerts(ca.Cert), 0o644); err != nil {
		return nil, err
	}
	return ca, nil
}

func loadCA(certPath, keyPath string) (*pki.Authority, error) {
	cb, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("reading the CA: %w", err)
	}
	kb, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("reading the CA key: %w", err)
	}
	ca, err := pki.LoadAuthority(pki.Files{CACert: cb, CAKey: kb})
	if err != nil {
		return nil, fmt.Errorf("the CA in %s and %s: %w", certPath, keyPath, err)
	}
	return ca, nil
}

// writeLeaf writes a server certificate for hosts, localhost and ips signed by ca.
func writeLeaf(ca *pki.Authority, certPath, keyPath string, hosts, ips []string) error {
	cn := "localhost"
	if len(hosts) > 0 {
		cn = hosts[0]
	}
	t := pki.Template{CommonName: cn, DNSNames: append(append([]string{}, hosts...), "localhost"), Validity: certValidity}
	for _, s := range append([]string{"127.0.0.1"}, ips...) {
		if ip := net.ParseIP(s); ip != nil {
			t.IPs = append(t.IPs, ip)
		}
	}
	c, err := ca.Issue(t, pki.ECDSAP256)
	if err != nil {
		return fmt.Errorf("creating the server certificate: %w", err)
	}
	key, err := pki.EncodeKey(c.PrivateKey.(crypto.Signer))
	if err != nil {
		return err
	}
	if err := writeFile(keyPath, key, 0o600); err != nil {
		return err
	}
	return writeFile(certPath, pki.EncodeCerts(c.Leaf), 0o644)
}

// writeFile creates path (never overwriting) with b.
func writeFile(path string, b []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return errors.Join(fmt.Errorf("writing %s: %w", path, err), os.Remove(path))
	}
	return nil
}
