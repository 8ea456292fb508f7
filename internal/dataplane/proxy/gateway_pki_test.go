package proxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// testCA issues certificates for the gateway tests, generated per test run.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
	dir  string
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), dir: t.TempDir()}
}

// issue returns a PEM certificate and key for names (DNS SANs); client certificates get
// the client-auth usage and a URI SAN spiffe://cluster.local/ns/default/sa/<first name>.
func (ca *testCA) issue(t *testing.T, client bool, names ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
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

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

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
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, name+" xfp="+r.Header.Get("X-Forwarded-Proto")+" "+r.URL.Path)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
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
