package meshtest

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/testutil"
)

// presented dials addr with SNI host and returns the DNS names of the certificate the
// gateway presents.
func presented(addr, host string, roots *x509.CertPool) ([]string, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr,
		&tls.Config{ServerName: host, RootCAs: roots, MinVersion: tls.VersionTLS12})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].DNSNames, nil
}

// In local mode a Gateway's credentialName is the directory credentials/<name> of the
// config directory (tls.crt, tls.key as in a kubernetes.io/tls Secret); the gateway serves
// those files and, when they are replaced, serves the new certificate to new connections
// by itself: the control plane pushes nothing. Addresses: 127.0.97.110.
func TestRouterServesLocalCredential(t *testing.T) {
	ca := testutil.CA(t, "meshtest credential CA")
	first := testutil.Issue(t, ca, false, "web.example.com")
	files := map[string]string{
		"credentials/web-cert/tls.crt": string(first.CertPEM),
		"credentials/web-cert/tls.key": string(first.KeyPEM),
		"gateway.yaml": `
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: istio-ingressgateway, namespace: istio-system, annotations: {lucid.dev/proxy: router}}
spec: {address: 127.0.97.110, labels: {istio: ingressgateway}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ingress, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8443, name: https, protocol: HTTPS}
    hosts: [web.example.com]
    tls: {mode: SIMPLE, credentialName: web-cert}
`,
	}
	m := Start(t, files, []Workload{{Name: "istio-ingressgateway", Namespace: "istio-system", IP: "127.0.97.110", Router: true,
		Labels: map[string]string{"istio": "ingressgateway"}}})
	const addr = "127.0.97.110:8443"
	roots := ca.RootPool()
	var got []string
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for got, err = presented(addr, "web.example.com", roots); err != nil; got, err = presented(addr, "web.example.com", roots) {
		if time.Now().After(deadline) {
			t.Fatalf("the gateway never served credentials/web-cert: %v\nlogs:\n%s", err, m.Logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !slices.Equal(got, []string{"web.example.com"}) {
		t.Fatalf("first certificate: %v", got)
	}

	renewed := testutil.Issue(t, ca, false, "web.example.com", "renewed.example.com")
	m.WriteFile("credentials/web-cert/tls.key", string(renewed.KeyPEM))
	m.WriteFile("credentials/web-cert/tls.crt", string(renewed.CertPEM))
	got, err = presented(addr, "web.example.com", roots)
	if err != nil || !slices.Contains(got, "renewed.example.com") {
		t.Errorf("the next connection after the files changed: %v %v, want the renewed certificate", got, err)
	}
	if !strings.Contains(m.Logs.String(), "certificate files changed; new connections get the new certificate") {
		t.Error("the gateway did not log the reload")
	}
	if n := strings.Count(m.Logs.String(), "config changed"); n != 0 {
		t.Errorf("the control plane rescanned the configuration %d times for a certificate's new content", n)
	}
}
