package config

import (
	"os"
	"path/filepath"
	"testing"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
)

func TestResolveGatewayFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "gw", "certs"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"credentials/c-cert", "credentials/e-cert", "credentials/e-cert-cacert", "credentials/f-cert"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"gw/certs/a.crt", "gw/certs/a.key", "gw/certs/ca.crt",
		"credentials/c-cert/tls.crt", "credentials/c-cert/tls.key", // a kubernetes.io/tls Secret's keys
		"credentials/e-cert/cert", "credentials/e-cert/key", "credentials/e-cert-cacert/cacert", // generic keys, the CA apart
		"credentials/f-cert/tls.crt", "credentials/f-cert/tls.key"} { // MUTUAL without a CA
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const yaml = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ingress, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
  - port: {number: 443, name: https-a, protocol: HTTPS}
    hosts: [a.example.com]
    tls: {mode: MUTUAL, serverCertificate: certs/a.crt, privateKey: certs/a.key, caCertificates: certs/ca.crt}
  - port: {number: 443, name: https-b, protocol: HTTPS}
    hosts: [b.example.com]
    tls: {mode: SIMPLE, serverCertificate: certs/b.crt, privateKey: certs/b.key}
  - port: {number: 443, name: https-c, protocol: HTTPS}
    hosts: [c.example.com]
    tls: {mode: SIMPLE, credentialName: c-cert}
  - port: {number: 443, name: https-d, protocol: HTTPS}
    hosts: [d.example.com]
    tls: {mode: SIMPLE, credentialName: d-cert}
  - port: {number: 443, name: https-e, protocol: HTTPS}
    hosts: [e.example.com]
    tls: {mode: MUTUAL, credentialName: e-cert}
  - port: {number: 443, name: https-f, protocol: HTTPS}
    hosts: [f.example.com]
    tls: {mode: MUTUAL, credentialName: f-cert}
`
	objs, diags := Parse("gw/gateway.yaml", []byte(yaml))
	if len(diags) != 0 {
		t.Fatalf("parse: %v", diags)
	}
	orig := objs[0].Spec.(*networkingv1alpha3.Gateway)
	out, diags := ResolveGatewayFiles(dir, objs)
	abs, _ := filepath.Abs(dir)
	want := []string{
		"error gw/gateway.yaml:2: Gateway istio-system/ingress: spec.servers[2].tls.serverCertificate: cannot read certs/b.crt (" +
			filepath.Join(abs, "gw", "certs", "b.crt") + "): no such file; this server is not served, the gateway's other servers are",
		`error gw/gateway.yaml:2: Gateway istio-system/ingress: spec.servers[4].tls.credentialName: credentialName "d-cert": no certificate in ` +
			filepath.Join(abs, "credentials", "d-cert") + ` (local mode reads a Gateway credential from credentials/d-cert/: tls.crt and tls.key, or cert and key; ca.crt for MUTUAL); this server is not served, the gateway's other servers are`,
		`error gw/gateway.yaml:2: Gateway istio-system/ingress: spec.servers[6].tls.credentialName: credentialName "f-cert": MUTUAL needs the CA that signs client certificates: ca.crt (or cacert) in ` +
			filepath.Join(abs, "credentials", "f-cert") + ` or in ` + filepath.Join(abs, "credentials", "f-cert") + `-cacert; this server is not served, the gateway's other servers are`,
	}
	checkDiags(t, diags, want)
	gw := out[0].Spec.(*networkingv1alpha3.Gateway)
	if len(gw.GetServers()) != 4 || gw.GetServers()[1].GetPort().GetName() != "https-a" {
		t.Fatalf("servers kept: %v", gw.GetServers())
	}
	tls := gw.GetServers()[1].GetTls()
	if got, want := tls.GetServerCertificate(), filepath.Join(abs, "gw", "certs", "a.crt"); got != want {
		t.Errorf("serverCertificate = %q, want %q", got, want)
	}
	if got, want := tls.GetCaCertificates(), filepath.Join(abs, "gw", "certs", "ca.crt"); got != want {
		t.Errorf("caCertificates = %q, want %q", got, want)
	}
	// credentialName in local mode: the files of credentials/<name>/.
	c := gw.GetServers()[2].GetTls()
	if c.GetCredentialName() != "" || c.GetServerCertificate() != filepath.Join(abs, "credentials", "c-cert", "tls.crt") ||
		c.GetPrivateKey() != filepath.Join(abs, "credentials", "c-cert", "tls.key") || c.GetCaCertificates() != "" {
		t.Errorf("credentialName c-cert (SIMPLE) became %v", c)
	}
	e := gw.GetServers()[3].GetTls()
	if e.GetServerCertificate() != filepath.Join(abs, "credentials", "e-cert", "cert") || e.GetPrivateKey() != filepath.Join(abs, "credentials", "e-cert", "key") ||
		e.GetCaCertificates() != filepath.Join(abs, "credentials", "e-cert-cacert", "cacert") {
		t.Errorf("credentialName e-cert (MUTUAL, generic keys, the CA apart) became %v", e)
	}
	if len(orig.GetServers()) != 7 || orig.GetServers()[3].GetTls().GetCredentialName() != "c-cert" || orig.GetServers()[1].GetTls().GetServerCertificate() != "certs/a.crt" {
		t.Error("the parsed object was modified")
	}
}
