package diag

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/agent"
	"github.com/lucid-mesh/lucid/internal/controlplane/discovery"
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
		"mesh.yaml": `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web}
spec:
  hosts: [web.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: web}}
---
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
	dir      string
	roots    *x509.CertPool
	logs     *testutil.Buffer
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	errs     chan error
	startErr error
}

// gatewayMesh starts the gateway mesh for one test (its subtests share it); it stops at
// the test's cleanup.
func gatewayMesh(t *testing.T) *gwMesh {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a mesh with a gateway")
	}
	m := startGatewayMesh(t)
	t.Cleanup(m.stop)
	if m.startErr != nil {
		t.Fatalf("gateway mesh: %v\nlogs:\n%s", m.startErr, m.logs.String())
	}
	return m
}

func startGatewayMesh(t *testing.T) *gwMesh {
	t.Helper()
	dir, err := os.MkdirTemp("", "lucid-diag-gw-")
	if err != nil {
		t.Fatal(err)
	}
	m := &gwMesh{dir: dir, logs: &testutil.Buffer{}, errs: make(chan error, 8)}
	cfg, certs := filepath.Join(dir, "config"), filepath.Join(dir, "certs")
	for _, d := range []string{cfg, certs, filepath.Join(dir, "logs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	m.roots = writeGatewayCerts(t, certs)
	for name, body := range gwMeshFiles(certs) {
		if err := os.WriteFile(filepath.Join(cfg, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	log := slog.New(slog.NewTextHandler(m.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	adsAddr := make(chan string, 1)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		err := discovery.Run(ctx, discovery.Options{
			ConfigDir: cfg, GRPCAddr: "127.0.83.1:0", DebugAddr: gwDebugAddr, Logger: log,
			PollInterval: 50 * time.Millisecond, Debounce: 20 * time.Millisecond,
			Ready: func(a string) { adsAddr <- a },
		})
		if err != nil {
			m.errs <- fmt.Errorf("discovery: %w", err)
		}
	}()
	var ads string
	select {
	case ads = <-adsAddr:
	case err := <-m.errs:
		m.startErr = err
		return m
	case <-time.After(10 * time.Second):
		m.startErr = fmt.Errorf("discovery did not publish within 10s")
		return m
	}
	web := workload{"web", gwWebIP, gwWebAppIP, "v1", map[string]string{"app": "web", "version": "v1"}}
	if err := m.startApp(ctx, web); err != nil {
		m.startErr = err
		return m
	}
	proxies := []struct {
		name, ns, ip string
		labels       map[string]string
		router       bool
	}{
		{"web", "default", gwWebIP, web.labels, false},
		{"istio-ingressgateway", "istio-system", gwIP, map[string]string{"istio": "ingressgateway", "app": "istio-ingressgateway"}, true},
	}
	for _, p := range proxies {
		p := p
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			err := agent.Run(ctx, agent.Options{
				IP: netip.MustParseAddr(p.ip), Workload: p.name, Namespace: p.ns, Labels: p.labels,
				Discovery: ads, AdminPort: 15000, StatusPort: 15020, LogLevel: "info", LogOutput: m.logs,
				AccessLog: filepath.Join(dir, "logs", p.name+".log"), DrainDuration: 200 * time.Millisecond,
				AgentOptions: agent.AgentOptions{Router: p.router},
			})
			if err != nil {
				m.errs <- fmt.Errorf("proxy %s: %w", p.name, err)
			}
		}()
	}
	for _, p := range proxies {
		if err := testutil.Poll(15*time.Second, func() error { return meshtest.Ready(p.ip) }); err != nil {
			m.startErr = err
			return m
		}
	}
	// Ready needs listeners and clusters (as Istio's readiness); the routes follow.
	m.startErr = testutil.Poll(10*time.Second, func() error { return routesArrived(testutil.Admin(gwIP)) })
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

func (m *gwMesh) stop() {
	m.cancel()
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		fmt.Fprintln(os.Stderr, "diag: gateway mesh did not stop within 15s")
	}
	_ = os.RemoveAll(m.dir)
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

// startApp runs w's echo app (the shared mesh's app, on this mesh's wait group).
func (m *gwMesh) startApp(ctx context.Context, w workload) error {
	other := &mesh{errs: m.errs}
	if err := other.startApp(ctx, w); err != nil {
		return err
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		other.wg.Wait()
	}()
	return nil
}
