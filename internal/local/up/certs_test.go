package up

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

const certGateway = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: gw
  annotations: {lucid.dev/generate-certificate: "true"}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8443, name: https, protocol: HTTPS}
    hosts: [default/shop.example.com]
    tls: {mode: SIMPLE, serverCertificate: tls/shop.crt, privateKey: tls/shop.key}
`

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The generated server certificate verifies against the generated CA for the server's
// host and the gateway's address, and a second run leaves the files alone.
func TestEnsureCertificates(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "gw")
	if err := os.MkdirAll(sub, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sub, "gw.yaml"), []byte(certGateway), 0o644); err != nil {
		t.Fatal(err)
	}
	objs, diags := config.LoadDir(dir)
	for _, d := range diags {
		if d.Level == config.Error {
			t.Fatalf("test YAML rejected: %s", d)
		}
	}
	gen, err := EnsureCertificates(dir, objs, []string{"127.0.96.7"})
	if err != nil {
		t.Fatal(err)
	}
	if len(gen) != 1 || gen[0].Cert != filepath.Join(sub, "tls/shop.crt") || gen[0].CA != filepath.Join(sub, "tls/ca.crt") {
		t.Fatalf("generated %+v, want one certificate at gw/tls/shop.crt signed by gw/tls/ca.crt", gen)
	}
	pool := x509.NewCertPool()
	pool.AddCert(readCert(t, gen[0].CA))
	leaf := readCert(t, gen[0].Cert)
	for _, name := range []string{"shop.example.com", "localhost", "127.0.96.7", "127.0.0.1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool}); err != nil {
			t.Errorf("certificate does not verify for %s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "other.example.com", Roots: pool}); err == nil {
		t.Error("certificate verifies for other.example.com")
	}
	before, _ := os.ReadFile(gen[0].Cert)
	again, err := EnsureCertificates(dir, objs, nil)
	if err != nil || len(again) != 0 {
		t.Fatalf("second run: %v, %+v; want nothing generated", err, again)
	}
	if after, _ := os.ReadFile(gen[0].Cert); string(after) != string(before) {
		t.Error("second run rewrote the certificate")
	}
}

// A credentialName gets its files generated in credentials/<name>/, where local mode reads
// them; a credential already there is left alone.
func TestEnsureCertificatesForCredentialName(t *testing.T) {
	dir := t.TempDir()
	gw := `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: shop, namespace: istio-system, annotations: {lucid.dev/generate-certificate: "true"}}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8443, name: https, protocol: HTTPS}
    hosts: [shop.example.com]
    tls: {mode: SIMPLE, credentialName: shop-cert}
`
	if err := os.WriteFile(filepath.Join(dir, "gw.yaml"), []byte(gw), 0o644); err != nil {
		t.Fatal(err)
	}
	objs, _ := config.LoadDir(dir)
	gen, err := EnsureCertificates(dir, objs, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(dir, "credentials", "shop-cert", "tls.crt")
	if len(gen) != 1 || gen[0].Cert != want {
		t.Fatalf("generated %+v, want %s", gen, want)
	}
	if f, ok := config.FindCredential(dir, "shop-cert"); !ok || f.Cert != want {
		t.Errorf("local mode does not find the generated credential: %+v", f)
	}
	if again, err := EnsureCertificates(dir, objs, nil); err != nil || len(again) != 0 {
		t.Errorf("second run: %v, %+v; want nothing generated", err, again)
	}
}
