// Package catest runs the mesh CA (internal/controlplane/ca) for tests, as `lucid
// discovery` does: a self-signed root, istio.v1.auth.IstioCertificateService on a loopback
// TLS port with the serving certificate the CA issues, and local workload tokens. Agent
// and proxy tests get real certificates from it over real gRPC.
package catest

import (
	"crypto/x509"
	"net"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/lucid-mesh/lucid/internal/controlplane/ca"
	"github.com/lucid-mesh/lucid/internal/pki"
)

// CA is a running mesh CA.
type CA struct {
	*ca.CA
	Addr       string // host:port of the TLS gRPC port
	TokensFile string // the local workload tokens it accepts
}

// Start runs a CA with Istio's defaults (trust domain cluster.local, 24-hour
// certificates unless asked otherwise) on ip (a loopback address of the test's subnet),
// port chosen by the kernel; it stops when the test ends. Callers authenticate with a mesh
// client certificate or a local workload token (Token).
func Start(t testing.TB, ip string) *CA {
	t.Helper()
	root, err := pki.NewRoot(pki.RootOptions{Org: ca.DefaultTrustDomain, Validity: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.New(root, ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tokens := filepath.Join(t.TempDir(), "workload-tokens.json")
	addr := Serve(t, ip, c, ca.ClientCerts{TrustDomain: c.TrustDomain()}, ca.NewLocalTokens(tokens, c.TrustDomain()))
	return &CA{CA: c, Addr: addr, TokensFile: tokens}
}

// Serve runs c's CreateCertificate for callers auths authenticate on a TLS port of ip, as
// discovery does (the serving certificate from c for istiod's names and ip), until the
// test ends, and returns its address.
func Serve(t testing.TB, ip string, c *ca.CA, auths ...ca.Authenticator) string {
	t.Helper()
	r, err := c.ServingRotator(ca.ServingOptions{IPs: []net.IP{net.ParseIP(ip)}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(c.ServerTLSConfig(r))))
	ca.NewService(c, nil, auths...).Register(srv)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	return ln.Addr().String()
}

// Token issues the local token of workload (namespace/name) for identity ns/sa.
func (c *CA) Token(t testing.TB, workload, ns, sa string) string {
	t.Helper()
	tok, err := ca.IssueLocalToken(c.TokensFile, workload, ns, sa)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Roots is a pool of the CA's roots (what verifies its port and its certificates).
func (c *CA) Roots() *x509.CertPool { return c.Authority().RootPool() }
