package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/pki"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

// testCA issues certificates for the gateway tests, generated per test run.
type testCA struct {
	*pki.Authority
	pem []byte
	dir string
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	ca := testutil.CA(t, name)
	return &testCA{Authority: ca, pem: pki.EncodeCerts(ca.Cert), dir: t.TempDir()}
}

// issue returns a PEM certificate and key for names (DNS SANs); client certificates get
// the client-auth usage.
func (ca *testCA) issue(t *testing.T, client bool, names ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	l := testutil.Issue(t, ca.Authority, client, names...)
	return l.CertPEM, l.KeyPEM
}

// files writes a server certificate for names and returns the chain's TLS settings with
// file paths, as the control plane sends them.
func (ca *testCA) files(t *testing.T, file string, names ...string) resource.CertificatePair {
	t.Helper()
	c, k := ca.issue(t, false, names...)
	cp := resource.CertificatePair{Chain: resource.DataSource{Filename: filepath.Join(ca.dir, file+".crt")}, PrivateKey: resource.DataSource{Filename: filepath.Join(ca.dir, file+".key")}}
	if err := os.WriteFile(cp.Chain.Filename, c, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cp.PrivateKey.Filename, k, 0o600); err != nil {
		t.Fatal(err)
	}
	return cp
}

func (ca *testCA) pool() *x509.CertPool { return ca.RootPool() }

func (ca *testCA) clientCert(t *testing.T, name string) tls.Certificate {
	t.Helper()
	c, k := ca.issue(t, true, name)
	cert, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// echoBackend answers "<name> <proto seen by the backend> xfp=<x-forwarded-proto> <path>".
func echoBackend(t *testing.T, addr, name string) {
	t.Helper()
	testutil.Backend(t, addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, name+" xfp="+r.Header.Get("X-Forwarded-Proto")+" "+r.URL.Path)
	}))
}

// tlsBackend is a TLS server (an upstream behind a passthrough route) answering its name.
func tlsBackend(t *testing.T, addr, name string, ca *testCA) {
	t.Helper()
	c, k := ca.issue(t, false, name)
	cert, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", addr, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "upstream "+name+" "+r.URL.Path)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
}

// httpsClient dials addr whatever the URL's host, with SNI serverName, trusting ca.
func httpsClient(addr, serverName string, roots *x509.CertPool, h2 bool, certs ...tls.Certificate) *http.Client {
	cfg := &tls.Config{ServerName: serverName, RootCAs: roots, MinVersion: tls.VersionTLS12}
	if len(certs) > 0 {
		// Send the certificate even when the server's CA list does not name its issuer
		// (Go's default would then send none).
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &certs[0], nil }
	}
	tr := &http.Transport{
		TLSClientConfig: cfg,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		},
	}
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetHTTP2(h2)
	tr.Protocols = &p
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

// gatewayListener is a router's listener 0.0.0.0_<port> with the TLS inspector.
func gatewayListener(port uint16, chains ...resource.FilterChain) *resource.Listener {
	return &resource.Listener{
		Name: "0.0.0.0_" + strconv.Itoa(int(port)), Address: netip.AddrPortFrom(netip.IPv4Unspecified(), port),
		BindToPort: true, Direction: resource.Outbound, TLSInspector: true, FilterChains: chains,
	}
}

func gatewayHCM(rds string) *resource.HTTPManager {
	return &resource.HTTPManager{RDSName: rds, StatPrefix: "outbound_0.0.0.0_8443", UseRemoteAddress: true, ServerName: "istio-envoy", IdleTimeout: time.Hour}
}

// vhostRoutes is a route configuration with one virtual host per (domain → cluster).
func vhostRoutes(name string, hosts ...[2]string) *resource.RouteConfig {
	rc := &resource.RouteConfig{Name: name}
	for _, h := range hosts {
		rc.VirtualHosts = append(rc.VirtualHosts, resource.VirtualHost{
			Name: h[0] + ":443", Domains: []string{h[0], h[0] + ":*"},
			Routes: []resource.Route{{Name: "r", Match: resource.RouteMatch{PathKind: resource.PathPrefix, Path: "/", CaseSensitive: true}, Action: &resource.RouteAction{Cluster: h[1]}}},
		})
	}
	return rc
}

// answer is what a client saw of one response.
type answer struct {
	code  int
	proto string
	tls   *tls.ConnectionState
	body  string
}

func get(t *testing.T, c *http.Client, url string) answer {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{code: resp.StatusCode, proto: resp.Proto, tls: resp.TLS, body: string(b)}
}
