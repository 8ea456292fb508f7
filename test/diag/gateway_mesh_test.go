package diag

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/diag/inspect"
	"github.com/lucid-mesh/lucid/internal/pki"
	"github.com/lucid-mesh/lucid/internal/testutil"
	"github.com/lucid-mesh/lucid/internal/testutil/meshtest"
)

// The gateway test mesh, in 127.0.83.0/24: the control plane's debug port on
// 127.0.83.1:15014, an ingress gateway (router mode) on 127.0.83.10, the web workload's
// sidecar on 127.0.83.11 with its app on 127.0.83.21.
const (
	gwDebugAddr = "127.0.83.1:15014"
	gwIP        = "127.0.83.10"
	gwWebIP     = "127.0.83.11"
	gwWebAppIP  = "127.0.83.21"
	gwName      = "istio-ingressgateway.istio-system"
)

// gwMeshFiles is the gateway mesh's configuration; certs is the directory holding the
// certificates (web.example.com and mtls.example.com, signed by ca.crt).
func gwMeshFiles(certs string) map[string]string {
	return map[string]string{
		"mesh.yaml": meshtest.HTTPService("web") + `
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: web, annotations: {lucid.dev/app-address: ` + gwWebAppIP + `}}
spec: {address: ` + gwWebIP + `, labels: {app: web, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web}
spec:
  host: web.default.svc.cluster.local
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v9, labels: {version: v9}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: istio-ingressgateway, namespace: istio-system, annotations: {lucid.dev/proxy: router}}
spec: {address: ` + gwIP + `, labels: {istio: ingressgateway, app: istio-ingressgateway}}
`,
		"gateway.yaml": `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ingress, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
  - port: {number: 8081, name: http-redirect, protocol: HTTP}
    hosts: [secure.example.com]
    tls: {httpsRedirect: true}
  - port: {number: 8443, name: https, protocol: HTTPS}
    hosts: [web.example.com]
    tls: {mode: SIMPLE, serverCertificate: ` + filepath.Join(certs, "web.example.com.crt") + `, privateKey: ` + filepath.Join(certs, "web.example.com.key") + `}
  - port: {number: 8443, name: https-mtls, protocol: HTTPS}
    hosts: [mtls.example.com]
    tls: {mode: MUTUAL, serverCertificate: ` + filepath.Join(certs, "mtls.example.com.crt") + `, privateKey: ` + filepath.Join(certs, "mtls.example.com.key") + `, caCertificates: ` + filepath.Join(certs, "ca.crt") + `}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web}
spec:
  hosts: ["*"]
  gateways: [istio-system/ingress]
  http:
  - name: web
    match: [{uri: {prefix: /web}}]
    route: [{destination: {host: web.default.svc.cluster.local, port: {number: 9080}, subset: v1}}]
  - name: broken
    match: [{uri: {prefix: /broken}}]
    route: [{destination: {host: web.default.svc.cluster.local, port: {number: 9080}, subset: v9}}]
`,
	}
}

// writeGatewayCerts writes a CA and server certificates for web.example.com and
// mtls.example.com into dir; it returns a pool trusting the CA.
func writeGatewayCerts(t testing.TB, dir string) *x509.CertPool {
	t.Helper()
	ca := testutil.CA(t, "diag test CA")
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("ca.crt", pki.EncodeCerts(ca.Cert))
	for _, host := range []string{"web.example.com", "mtls.example.com"} {
		l := testutil.Issue(t, ca, false, host)
		write(host+".crt", l.CertPEM)
		write(host+".key", l.KeyPEM)
	}
	return ca.RootPool()
}

// gwMesh is a running gateway mesh.
type gwMesh struct {
	*meshtest.Mesh
	dir   string // holds certs/ and logs/ (the captured fixtures name it /lucid-diag)
	roots *x509.CertPool
}

// gatewayMesh starts the gateway mesh for one test (its subtests share it); it stops at
// the test's cleanup.
func gatewayMesh(t *testing.T) *gwMesh {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a mesh with a gateway")
	}
	dir := t.TempDir()
	certs, logs := filepath.Join(dir, "certs"), filepath.Join(dir, "logs")
	for _, d := range []string{certs, logs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	m := &gwMesh{dir: dir, roots: writeGatewayCerts(t, certs)}
	m.Mesh = meshtest.StartWith(t, meshtest.Options{
		GRPCAddr: "127.0.83.1:0", DebugAddr: gwDebugAddr, PollInterval: 50 * time.Millisecond, Debounce: 20 * time.Millisecond,
	}, gwMeshFiles(certs), []meshtest.Workload{
		{Name: "web", IP: gwWebIP, AppIP: gwWebAppIP, Ports: []int{9080}, Version: "v1",
			Labels: map[string]string{"app": "web", "version": "v1"}, AccessLog: filepath.Join(logs, "web.log")},
		{Name: "istio-ingressgateway", Namespace: "istio-system", IP: gwIP, Router: true,
			Labels:    map[string]string{"istio": "ingressgateway", "app": "istio-ingressgateway"},
			AccessLog: filepath.Join(logs, "istio-ingressgateway.log")},
	})
	// Ready needs listeners and clusters (as Istio's readiness); the routes follow.
	if err := testutil.Poll(10*time.Second, func() error { return routesArrived(testutil.Admin(gwIP)) }); err != nil {
		t.Fatalf("gateway mesh: %v\nlogs:\n%s", err, m.Logs.String())
	}
	return m
}

// routesArrived is nil once every route configuration the proxy's listeners name has
// arrived.
func routesArrived(admin string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	dump, err := (&inspect.Client{}).ConfigDump(ctx, admin, false)
	if err != nil {
		return fmt.Errorf("config dump of %s: %w", admin, err)
	}
	s, err := dump.Snapshot()
	if err != nil {
		return fmt.Errorf("decode the config dump of %s: %w", admin, err)
	}
	var missing []string
	for _, l := range s.Listeners {
		for _, fc := range l.FilterChains {
			if fc.HTTP != nil && fc.HTTP.RDSName != "" && s.Routes[fc.HTTP.RDSName] == nil {
				missing = append(missing, fc.HTTP.RDSName)
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s: routes %v have not arrived", admin, missing)
	}
	return nil
}

// accessLog returns the gateway's access log so far.
func (m *gwMesh) accessLog(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(m.dir, "logs", "istio-ingressgateway.log"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// dialer connects to the gateway whatever the URL's host: as curl --connect-to does.
func gwDialer(ctx context.Context, network, addr string) (net.Conn, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	return d.DialContext(ctx, network, net.JoinHostPort(gwIP, port))
}

// tlsConfig is a client's TLS configuration for the gateway's certificates.
func (m *gwMesh) tlsConfig(alpn ...string) *tls.Config {
	return &tls.Config{RootCAs: m.roots, NextProtos: alpn, MinVersion: tls.VersionTLS12}
}
