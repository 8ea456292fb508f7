package proxy

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// replaceFile writes data to name as an atomic writer (or a Kubernetes volume update)
// does: a new file renamed over the old one.
func replaceFile(t *testing.T, name string, data []byte) {
	t.Helper()
	tmp := name + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, name); err != nil {
		t.Fatal(err)
	}
}

// servedNames dials the listener with SNI a.example.com and returns the DNS names of the
// certificate the gateway presents.
func servedNames(t *testing.T, addr string, ca *testCA) []string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "a.example.com", RootCAs: ca.pool(), MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].DNSNames
}

// A gateway serving certificate files picks up new files at the next handshake, with no
// new configuration; files that do not load keep the last good certificate.
func TestGatewayReloadsChangedCertificateFiles(t *testing.T) {
	ca := newCA(t, "gateway test CA")
	startSNIBackends(t)
	p := newProxy(t, "127.0.97.20")
	if err := p.Apply(sniSnapshot(t, ca)); err != nil {
		t.Fatal(err)
	}
	const addr = "127.0.97.20:8443"
	crt, key := filepath.Join(ca.dir, "a.crt"), filepath.Join(ca.dir, "a.key")
	if got := servedNames(t, addr, ca); !slices.Equal(got, []string{"a.example.com"}) {
		t.Fatalf("first certificate names %v", got)
	}

	// Renewed: both files replaced.
	c2, k2 := ca.issue(t, false, "a.example.com", "renewed.example.com")
	replaceFile(t, key, k2)
	replaceFile(t, crt, c2)
	if got := servedNames(t, addr, ca); !slices.Contains(got, "renewed.example.com") {
		t.Errorf("after the files changed the gateway presents %v, want the renewed certificate", got)
	}

	// Half written: a key that is not the certificate's. The renewed one keeps serving.
	_, other := ca.issue(t, false, "a.example.com")
	replaceFile(t, key, other)
	if got := servedNames(t, addr, ca); !slices.Contains(got, "renewed.example.com") {
		t.Errorf("with a mismatched key the gateway presents %v, want the last good (renewed) certificate", got)
	}
	// Removed altogether: still the last good one.
	if err := os.Remove(crt); err != nil {
		t.Fatal(err)
	}
	if got := servedNames(t, addr, ca); !slices.Contains(got, "renewed.example.com") {
		t.Errorf("with the certificate file gone the gateway presents %v, want the last good one", got)
	}

	// Completed: the new pair loads.
	c3, k3 := ca.issue(t, false, "a.example.com", "third.example.com")
	replaceFile(t, key, k3)
	replaceFile(t, crt, c3)
	if got := servedNames(t, addr, ca); !slices.Contains(got, "third.example.com") {
		t.Errorf("after the pair was completed the gateway presents %v, want the third certificate", got)
	}
}

// Inline certificates (what the control plane sends for a Kubernetes Secret) are not
// wrapped: nothing to stat.
func TestInlineCertificatesAreNotWatched(t *testing.T) {
	ca := newCA(t, "gateway test CA")
	c, k := ca.issue(t, false, "a.example.com")
	d := simpleTLS(resource.CertificatePair{Chain: resource.DataSource{Inline: c}, PrivateKey: resource.DataSource{Inline: k}})
	cfg, err := fileChainTLS(d, nil, "l", "c")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.GetConfigForClient != nil || len(cfg.Certificates) != 1 {
		t.Errorf("inline certificate: GetConfigForClient set %v, %d certificates", cfg.GetConfigForClient != nil, len(cfg.Certificates))
	}
}
