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
	for _, f := range []string{"gw/certs/a.crt", "gw/certs/a.key", "gw/certs/ca.crt"} {
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
		`error gw/gateway.yaml:2: Gateway istio-system/ingress: spec.servers[3].tls.credentialName: credentialName "c-cert" names a Kubernetes Secret, which local mode does not read; set serverCertificate and privateKey to files instead (this server is not served, the gateway's other servers are)`,
	}
	checkDiags(t, diags, want)
	gw := out[0].Spec.(*networkingv1alpha3.Gateway)
	if len(gw.GetServers()) != 2 || gw.GetServers()[1].GetPort().GetName() != "https-a" {
		t.Fatalf("servers kept: %v", gw.GetServers())
	}
	tls := gw.GetServers()[1].GetTls()
	if got, want := tls.GetServerCertificate(), filepath.Join(abs, "gw", "certs", "a.crt"); got != want {
		t.Errorf("serverCertificate = %q, want %q", got, want)
	}
	if got, want := tls.GetCaCertificates(), filepath.Join(abs, "gw", "certs", "ca.crt"); got != want {
		t.Errorf("caCertificates = %q, want %q", got, want)
	}
	if len(orig.GetServers()) != 4 || orig.GetServers()[1].GetTls().GetServerCertificate() != "certs/a.crt" {
		t.Error("the parsed object was modified")
	}
}
