package meshtest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lucid-mesh/lucid/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(SharedMain(m)) }

// writeCert writes a certificate for host into dir and returns its paths and a pool
// trusting its CA.
func writeCert(t *testing.T, dir, host string) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	ca := testutil.CA(t, "meshtest CA")
	l := testutil.Issue(t, ca, false, host)
	certFile, keyFile = filepath.Join(dir, host+".crt"), filepath.Join(dir, host+".key")
	if err := os.WriteFile(certFile, l.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, l.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, ca.RootPool()
}

// A gateway (the agent in router mode, as `lucid gateway` runs it) gets its listeners from
// a real control plane and serves a Gateway + VirtualService route over HTTP and HTTPS to
// a workload behind its sidecar. Addresses: 127.0.97.100-102.
func TestRouterServesGatewayRoutes(t *testing.T) {
	certFile, keyFile, roots := writeCert(t, t.TempDir(), "web.example.com")
	files := map[string]string{
		"mesh.yaml": HTTPService("web") + `
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: web, annotations: {lucid.dev/app-address: 127.0.97.101}}
spec: {address: 127.0.97.102, labels: {app: web, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: istio-ingressgateway, namespace: istio-system, annotations: {lucid.dev/proxy: router}}
spec: {address: 127.0.97.100, labels: {istio: ingressgateway, app: istio-ingressgateway}}
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
  - port: {number: 8443, name: https, protocol: HTTPS}
    hosts: [web.example.com]
    tls: {mode: SIMPLE, serverCertificate: ` + certFile + `, privateKey: ` + keyFile + `}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web}
spec:
  hosts: [web.example.com]
  gateways: [istio-system/ingress]
  http:
  - match: [{uri: {prefix: /web}}]
    route: [{destination: {host: web.default.svc.cluster.local, port: {number: 9080}}}]
`,
	}
	m := Start(t, files, []Workload{
		{Name: "web", IP: "127.0.97.102", AppIP: "127.0.97.101", Ports: []int{9080}, Labels: map[string]string{"app": "web", "version": "v1"}, Version: "v1"},
		{Name: "istio-ingressgateway", Namespace: "istio-system", IP: "127.0.97.100", Router: true,
			Labels: map[string]string{"istio": "ingressgateway", "app": "istio-ingressgateway"}},
	})

	c := &http.Client{Timeout: 5 * time.Second}
	defer c.CloseIdleConnections()
	var echo Echo
	getJSON := func(c *http.Client, url, host string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Host = host
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s (Host %s): %v\nlogs:\n%s", url, host, err, m.Logs.String())
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == 200 {
			if err := json.Unmarshal(b, &echo); err != nil {
				t.Fatalf("body %q: %v", b, err)
			}
		}
		return resp.StatusCode
	}
	// The routes arrive through RDS after the listeners: poll until the route serves.
	if err := testutil.Poll(10*time.Second, func() error {
		if code := getJSON(c, "http://127.0.97.100:8080/web/x", "web.example.com"); code != 200 {
			return fmt.Errorf("/web answered %d", code)
		}
		return nil
	}); err != nil {
		t.Fatalf("the gateway never served /web over HTTP: %v\nlogs:\n%s", err, m.Logs.String())
	}
	if echo.Service != "web" || echo.Path != "/web/x" {
		t.Errorf("HTTP through the gateway reached %+v", echo)
	}
	if code := getJSON(c, "http://127.0.97.100:8080/web/x", "other.example.com"); code != http.StatusNotFound {
		t.Errorf("a host no VirtualService binds: %d, want 404", code)
	}

	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "web.example.com", MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true}}
	defer hc.CloseIdleConnections()
	if code := getJSON(hc, "https://127.0.97.100:8443/web/s", "web.example.com"); code != 200 || echo.Service != "web" {
		t.Fatalf("HTTPS through the gateway: %d %+v", code, echo)
	}
	if got := echo.Headers.Get("X-Forwarded-Proto"); got != "https" {
		t.Errorf("x-forwarded-proto at the app = %q, want https", got)
	}
	if !strings.Contains(m.Logs.String(), "router~127.0.97.100~istio-ingressgateway.istio-system~istio-system.svc.cluster.local") {
		t.Errorf("the gateway did not identify as a router")
	}
}
