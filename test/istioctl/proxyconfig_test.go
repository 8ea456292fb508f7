package istioctl

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clusterswriter "istio.io/istio/istioctl/pkg/writer/envoy/clusters"
	"istio.io/istio/istioctl/pkg/writer/envoy/configdump"

	"github.com/lucid-mesh/lucid/internal/cli"
	"github.com/lucid-mesh/lucid/internal/testutil"
	"github.com/lucid-mesh/lucid/internal/testutil/meshtest"
)

// The mesh: curl (a sidecar without an app) calls reviews (two versions, a weighted
// VirtualService with a header match, subsets) and ratings; an ingress gateway serves a
// wildcard host and an exact one. Addresses: 127.0.171.110-119.
const meshYAML = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: reviews}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratings}
spec:
  hosts: [ratings.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}, {number: 9090, name: tcp-metrics, protocol: TCP}]
  workloadSelector: {labels: {app: ratings}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1, annotations: {lucid.dev/app-address: 127.0.171.111}}
spec: {address: 127.0.171.112, labels: {app: reviews, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v2, annotations: {lucid.dev/app-address: 127.0.171.113}}
spec: {address: 127.0.171.114, labels: {app: reviews, version: v2}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ratings, annotations: {lucid.dev/app-address: 127.0.171.115}}
spec: {address: 127.0.171.116, labels: {app: ratings, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: curl}
spec: {address: 127.0.171.110, labels: {app: curl}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: istio-ingressgateway, namespace: istio-system, annotations: {lucid.dev/proxy: router}}
spec: {address: 127.0.171.117, labels: {istio: ingressgateway, app: istio-ingressgateway}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews.default.svc.cluster.local
  trafficPolicy: {loadBalancer: {simple: LEAST_REQUEST}}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews.default.svc.cluster.local]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews.default.svc.cluster.local, subset: v2}}]
  - route:
    - {destination: {host: reviews.default.svc.cluster.local, subset: v1}, weight: 80}
    - {destination: {host: reviews.default.svc.cluster.local, subset: v2}, weight: 20}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ingress, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*.example.com", "shop.example.org"]
  - port: {number: 8443, name: https, protocol: HTTPS}
    hosts: [shop.example.org]
    tls: {mode: SIMPLE, serverCertificate: CERT, privateKey: KEY}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop}
spec:
  hosts: ["*.example.com", "shop.example.org"]
  gateways: [istio-system/ingress]
  http:
  - match: [{uri: {prefix: /reviews}}]
    route: [{destination: {host: reviews.default.svc.cluster.local, port: {number: 9080}}}]
  - directResponse: {status: 404, body: {string: nothing here}}
`

func startMesh(t *testing.T) *meshtest.Mesh {
	t.Helper()
	cert, key := writeCert(t, "shop.example.org")
	yaml := strings.NewReplacer("CERT", cert, "KEY", key).Replace(meshYAML)
	return meshtest.Start(t, map[string]string{"mesh.yaml": yaml}, []meshtest.Workload{
		{Name: "curl", IP: "127.0.171.110", Labels: map[string]string{"app": "curl"}},
		{Name: "reviews-v1", IP: "127.0.171.112", AppIP: "127.0.171.111", Ports: []int{9080}, Labels: map[string]string{"app": "reviews", "version": "v1"}, Version: "v1"},
		{Name: "reviews-v2", IP: "127.0.171.114", AppIP: "127.0.171.113", Ports: []int{9080}, Labels: map[string]string{"app": "reviews", "version": "v2"}, Version: "v2"},
		{Name: "ratings", IP: "127.0.171.116", AppIP: "127.0.171.115", Ports: []int{9080}, Labels: map[string]string{"app": "ratings", "version": "v1"}, Version: "v1"},
		{Name: "istio-ingressgateway", Namespace: "istio-system", IP: "127.0.171.117", Router: true,
			Labels: map[string]string{"istio": "ingressgateway", "app": "istio-ingressgateway"}},
	})
}

// get reads an admin API path.
func get(t *testing.T, url string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v\n%s", url, resp.StatusCode, err, b)
	}
	return b
}

// lucid runs `lucid <args>` in process and returns what it printed.
func lucid(t *testing.T, args ...string) string {
	t.Helper()
	root := cli.NewRoot()
	var out, errOut bytes.Buffer
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errOut)
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("lucid %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String()
}

// istioctl runs one of istioctl's config-dump table writers on dump.
func istioctl(t *testing.T, dump []byte, print func(*configdump.ConfigWriter) error) string {
	t.Helper()
	var out bytes.Buffer
	w := &configdump.ConfigWriter{Stdout: &out}
	if err := w.Prime(dump); err != nil {
		t.Fatalf("istioctl cannot parse the config dump: %v", err)
	}
	if err := print(w); err != nil {
		t.Fatalf("istioctl: %v", err)
	}
	return out.String()
}

func same(t *testing.T, what, istioctl, lucid string) {
	t.Helper()
	if testing.Verbose() {
		t.Logf("%s:\n%s", what, istioctl)
	}
	if istioctl != lucid {
		t.Errorf("%s: lucid proxy-config differs from istioctl\n--- istioctl\n%s\n--- lucid\n%s", what, istioctl, lucid)
	}
}

// TestProxyConfigTablesMatchIstioctl: for a sidecar and a gateway, istioctl's writers on
// the proxy's /config_dump (and /clusters?format=json for endpoints) print exactly what
// `lucid proxy-config` prints.
func TestProxyConfigTablesMatchIstioctl(t *testing.T) {
	m := startMesh(t)
	for _, p := range []struct{ name, ip string }{{"curl", "127.0.171.110"}, {"istio-ingressgateway", "127.0.171.117"}} {
		t.Run(p.name, func(t *testing.T) {
			admin := testutil.Admin(p.ip)
			waitRoutes(t, m, admin)
			dump := get(t, "http://"+admin+"/config_dump?include_eds")
			same(t, "listeners", istioctl(t, dump, func(w *configdump.ConfigWriter) error {
				return w.PrintListenerSummary(configdump.ListenerFilter{Verbose: true})
			}), lucid(t, "proxy-config", "listeners", "--admin", admin))
			same(t, "listeners -o short", istioctl(t, dump, func(w *configdump.ConfigWriter) error {
				return w.PrintListenerSummary(configdump.ListenerFilter{})
			}), lucid(t, "proxy-config", "listeners", "--admin", admin, "-o", "short"))
			same(t, "routes", istioctl(t, dump, func(w *configdump.ConfigWriter) error {
				return w.PrintRouteSummary(configdump.RouteFilter{Verbose: true})
			}), lucid(t, "proxy-config", "routes", "--admin", admin))
			same(t, "routes -o short", istioctl(t, dump, func(w *configdump.ConfigWriter) error {
				return w.PrintRouteSummary(configdump.RouteFilter{})
			}), lucid(t, "proxy-config", "routes", "--admin", admin, "-o", "short"))
			same(t, "clusters", istioctl(t, dump, func(w *configdump.ConfigWriter) error {
				return w.PrintClusterSummary(configdump.ClusterFilter{})
			}), lucid(t, "proxy-config", "clusters", "--admin", admin))
			// The filters, as istioctl's flags set them.
			same(t, "clusters --fqdn reviews --port 9080 --direction outbound", istioctl(t, dump, func(w *configdump.ConfigWriter) error {
				return w.PrintClusterSummary(configdump.ClusterFilter{FQDN: "reviews", Port: 9080, Direction: "outbound"})
			}), lucid(t, "proxy-config", "clusters", "--admin", admin, "--fqdn", "reviews", "--port", "9080", "--direction", "outbound"))
			same(t, "clusters --subset v2", istioctl(t, dump, func(w *configdump.ConfigWriter) error {
				return w.PrintClusterSummary(configdump.ClusterFilter{Subset: "v2"})
			}), lucid(t, "proxy-config", "clusters", "--admin", admin, "--subset", "v2"))
			same(t, "listeners --type tcp", istioctl(t, dump, func(w *configdump.ConfigWriter) error {
				return w.PrintListenerSummary(configdump.ListenerFilter{Type: "tcp", Verbose: true})
			}), lucid(t, "proxy-config", "listeners", "--admin", admin, "--type", "tcp"))
			same(t, "listeners --port 8443", istioctl(t, dump, func(w *configdump.ConfigWriter) error {
				return w.PrintListenerSummary(configdump.ListenerFilter{Port: 8443, Verbose: true})
			}), lucid(t, "proxy-config", "listeners", "--admin", admin, "--port", "8443"))
			same(t, "routes --name 9080", istioctl(t, dump, func(w *configdump.ConfigWriter) error {
				return w.PrintRouteSummary(configdump.RouteFilter{Name: "9080", Verbose: true})
			}), lucid(t, "proxy-config", "routes", "--admin", admin, "--name", "9080"))

			var eps bytes.Buffer
			cw := &clusterswriter.ConfigWriter{Stdout: &eps}
			if err := cw.Prime(get(t, "http://"+admin+"/clusters?format=json")); err != nil {
				t.Fatalf("istioctl cannot parse /clusters?format=json: %v", err)
			}
			if err := cw.PrintEndpointsSummary(clusterswriter.EndpointFilter{}); err != nil {
				t.Fatal(err)
			}
			same(t, "endpoints", eps.String(), lucid(t, "proxy-config", "endpoints", "--admin", admin))
		})
	}
}

// waitRoutes waits until the proxy has its route configurations (RDS follows LDS).
func waitRoutes(t *testing.T, m *meshtest.Mesh, admin string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(string(get(t, "http://"+admin+"/config_dump")), "dynamic_route_configs") {
		if time.Now().After(deadline) {
			t.Fatalf("%s has no routes after 10s\nlogs:\n%s", admin, m.Logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writeCert writes a self-signed certificate and key for host and returns their paths.
func writeCert(t *testing.T, host string) (certFile, keyFile string) {
	t.Helper()
	cert, key := newCert(t, false, host, "", time.Now())
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, cert, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// newCert is a self-signed certificate (a CA, or a leaf for dnsName and uri) valid from an
// hour before now for a day, and its key, in PEM.
func newCert(t *testing.T, ca bool, dnsName, uri string, now time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: dnsName},
		NotBefore: now.Add(-time.Hour).Truncate(time.Second), NotAfter: now.Add(24 * time.Hour).Truncate(time.Second),
		IsCA: ca, BasicConstraintsValid: true}
	if dnsName != "" {
		tmpl.DNSNames = []string{dnsName}
	}
	if uri != "" {
		u, err := url.Parse(uri)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = []*url.URL{u}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}
