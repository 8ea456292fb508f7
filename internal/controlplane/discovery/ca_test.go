package discovery

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	securityv1alpha1 "istio.io/api/security/v1alpha1"

	"github.com/lucid-mesh/lucid/internal/controlplane/ca"
	"github.com/lucid-mesh/lucid/internal/pki"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

// lucid discovery in local mode serves the mesh CA on its TLS port: the roots land in the
// state directory beside the config (and verify the port), a workload token `lucid up`
// issued gets a certificate for its identity, a wrong token is refused, and a restart
// keeps the same root.
func TestDiscoveryServesCA(t *testing.T) {
	base := t.TempDir()
	cfg := filepath.Join(base, "mesh")
	if err := os.Mkdir(cfg, 0o755); err != nil {
		t.Fatal(err)
	}
	state := StateDirFor(cfg)
	if state != filepath.Join(base, ".mesh.lucid") {
		t.Fatalf("StateDirFor = %s", state)
	}
	run := func() (roots []byte, stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- Run(ctx, Options{ConfigDir: cfg, GRPCAddr: "127.0.163.30:0", CA: CAOptions{Addr: "127.0.163.30:15012"}})
		}()
		var b []byte
		testutil.Eventually(t, 10*time.Second, "root-cert.pem", func() bool {
			b, _ = os.ReadFile(filepath.Join(state, RootCertFile))
			return len(b) > 0
		})
		return b, func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}
	rootsPEM, stop := run()
	tok, err := ca.IssueLocalToken(filepath.Join(state, TokensFileName), "shop/web", "shop", "web-sa")
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(rootsPEM)
	cc, err := grpc.NewClient("127.0.163.30:15012", grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "127.0.163.30", MinVersion: tls.VersionTLS12})))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := securityv1alpha1.NewIstioCertificateServiceClient(cc)
	key, _ := pki.NewKey(pki.ECDSAP256)
	csr, err := pki.NewCSR(key, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ask := func(token string) (*securityv1alpha1.IstioCertificateResponse, error) {
		ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token), 5*time.Second)
		defer cancel()
		return client.CreateCertificate(ctx, &securityv1alpha1.IstioCertificateRequest{Csr: string(csr), ValidityDuration: 3600})
	}
	resp, err := ask(tok)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := pki.ParseCerts([]byte(resp.GetCertChain()[0]))
	if err != nil {
		t.Fatal(err)
	}
	if got := certs[0].URIs[0].String(); got != "spiffe://cluster.local/ns/shop/sa/web-sa" {
		t.Errorf("certificate for %s", got)
	}
	if _, err := ask(ca.LocalTokenPrefix + "forged"); status.Code(err) != codes.Unauthenticated {
		t.Errorf("forged token: %v, want Unauthenticated", err)
	}
	stop()
	again, stop := run()
	stop()
	if string(again) != string(rootsPEM) {
		t.Error("a restart made a new root; the kept one must serve")
	}
}
