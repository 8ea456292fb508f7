package file

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// A Gateway whose HTTPS certificate file is missing: an error names the Gateway and the
// field, the HTTP server keeps serving; once the file exists (and the config is
// rescanned), the HTTPS server is back with an absolute path.
func TestGatewayCertificateFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "gw"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, dir, "gw/gateway.yaml", `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ingress, namespace: istio-system}
spec:
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
  - port: {number: 8443, name: https, protocol: HTTPS}
    hosts: ["*"]
    tls: {mode: SIMPLE, serverCertificate: tls.crt, privateKey: tls.key}
`)
	s := New(dir, nil)
	objs, diags := s.Load()
	servers := func(objs []*config.Object) []*networkingv1alpha3.Server {
		if len(objs) != 1 {
			t.Fatalf("%d objects", len(objs))
		}
		return objs[0].Spec.(*networkingv1alpha3.Gateway).GetServers()
	}
	if got := servers(objs); len(got) != 1 || got[0].GetPort().GetNumber() != 8080 {
		t.Errorf("servers served: %v, want the HTTP one only", got)
	}
	if len(diags) != 1 || diags[0].Level != config.Error ||
		!strings.HasPrefix(diags[0].String(), "gw/gateway.yaml:2: Gateway istio-system/ingress: spec.servers[1].tls.serverCertificate: cannot read tls.crt (") {
		t.Errorf("diagnostics: %v", diags)
	}

	write(t, dir, "gw/tls.crt", "cert")
	write(t, dir, "gw/tls.key", "key")
	write(t, dir, "gw/touch.yaml", "") // the directory's YAML changed: rescan
	objs, diags, changed := s.rescan()
	if !changed || len(diags) != 0 {
		t.Fatalf("rescan: changed=%v diags=%v", changed, diags)
	}
	got := servers(objs)
	abs, _ := filepath.Abs(filepath.Join(dir, "gw", "tls.crt"))
	if len(got) != 2 || got[1].GetTls().GetServerCertificate() != abs {
		t.Errorf("servers after the files appeared: %v, want the HTTPS one with %s", got, abs)
	}
}

// A Gateway credentialName in local mode is the directory credentials/<name>: while it
// is missing the server is not served and the error names the directory; when the files
// appear, the next scan serves the server with them, with no YAML change.
func TestGatewayCredentialDirectory(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "gateway.yaml", `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ingress, namespace: istio-system}
spec:
  servers:
  - port: {number: 8443, name: https, protocol: HTTPS}
    hosts: [bookinfo.example.com]
    tls: {mode: SIMPLE, credentialName: bookinfo-cert}
`)
	s := New(dir, nil)
	objs, diags := s.Load()
	if n := len(objs[0].Spec.(*networkingv1alpha3.Gateway).GetServers()); n != 0 || len(diags) != 1 ||
		!strings.Contains(diags[0].String(), `spec.servers[0].tls.credentialName: credentialName "bookinfo-cert": no certificate in `+filepath.Join(dir, "credentials", "bookinfo-cert")) {
		t.Fatalf("without the files: %d servers, diagnostics %v", n, diags)
	}
	if _, _, changed := s.rescan(); changed {
		t.Error("a rescan with nothing changed reported a change")
	}
	if err := os.MkdirAll(filepath.Join(dir, "credentials", "bookinfo-cert"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, dir, "credentials/bookinfo-cert/tls.crt", "cert")
	write(t, dir, "credentials/bookinfo-cert/tls.key", "key")
	objs, diags, changed := s.rescan()
	if !changed || len(diags) != 0 {
		t.Fatalf("after the credential appeared: changed=%v diags=%v", changed, diags)
	}
	srv := objs[0].Spec.(*networkingv1alpha3.Gateway).GetServers()
	if len(srv) != 1 || srv[0].GetTls().GetServerCertificate() != filepath.Join(dir, "credentials", "bookinfo-cert", "tls.crt") {
		t.Errorf("servers after the credential appeared: %v", srv)
	}
	// New content in the same files is the gateway's to read: no rescan, no push.
	write(t, dir, "credentials/bookinfo-cert/tls.crt", "renewed cert")
	if _, _, changed := s.rescan(); changed {
		t.Error("a changed certificate's content made a new configuration; the gateway reloads it itself")
	}
}
