package ca

import (
	"context"
	"crypto/tls"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
	securityv1alpha1 "istio.io/api/security/v1alpha1"

	"github.com/lucid-mesh/lucid/internal/pki"
	"github.com/lucid-mesh/lucid/internal/pki/spiffe"
)

// serve runs the CA's gRPC service on a loopback TLS port as discovery would, and
// returns its address.
func serve(t *testing.T, c *CA, auths ...Authenticator) string {
	t.Helper()
	r, err := c.ServingRotator(ServingOptions{IPs: []net.IP{net.ParseIP("127.0.117.1")}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.117.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(c.ServerTLSConfig(r))))
	NewService(c, nil, auths...).Register(srv)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	return ln.Addr().String()
}

// client dials the CA verifying its certificate for istiod's name; cert, if set, is
// presented as a client certificate.
func client(t *testing.T, c *CA, addr string, cert *tls.Certificate) securityv1alpha1.IstioCertificateServiceClient {
	t.Helper()
	cfg := &tls.Config{RootCAs: c.Authority().RootPool(), ServerName: "istiod.istio-system.svc", MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return securityv1alpha1.NewIstioCertificateServiceClient(cc)
}

func ctxWith(t *testing.T, token string) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	return ctx
}

func TestCreateCertificate(t *testing.T) {
	c := newCA(t, Options{})
	tokens := filepath.Join(t.TempDir(), "workload-tokens.json")
	reviewsTok, err := IssueLocalToken(tokens, "default/reviews-v1", "default", "bookinfo-reviews")
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, c, ClientCerts{}, NewLocalTokens(tokens, ""))
	cl := client(t, c, addr, nil)

	tests := []struct {
		name  string
		token string
		req   *securityv1alpha1.IstioCertificateRequest
		code  codes.Code
		want  string
	}{
		{"no credential", "", &securityv1alpha1.IstioCertificateRequest{Csr: string(csrFor(t))}, codes.Unauthenticated,
			"request authenticate failure: client certificate: no credential; local workload token: no credential: no authorization metadata"},
		{"wrong token", LocalTokenPrefix + "guess", &securityv1alpha1.IstioCertificateRequest{Csr: string(csrFor(t))}, codes.Unauthenticated,
			"request authenticate failure: client certificate: no credential; local workload token: unknown token"},
		{"another identity in the CSR", reviewsTok, &securityv1alpha1.IstioCertificateRequest{Csr: string(csrFor(t, "spiffe://cluster.local/ns/istio-system/sa/istiod"))},
			codes.InvalidArgument, `CSR signing error (the CSR asks for URI SAN "spiffe://cluster.local/ns/istio-system/sa/istiod", but the caller authenticated as spiffe://cluster.local/ns/default/sa/bookinfo-reviews`},
		{"validity over the maximum", reviewsTok, &securityv1alpha1.IstioCertificateRequest{Csr: string(csrFor(t)), ValidityDuration: int64(DefaultMaxTTL/time.Second) + 1},
			codes.InvalidArgument, "CSR signing error (requested TTL 2160h0m1s is greater than the max allowed TTL 2160h0m0s)"},
		{"validity that overflows", reviewsTok, &securityv1alpha1.IstioCertificateRequest{Csr: string(csrFor(t)), ValidityDuration: 1 << 62},
			codes.InvalidArgument, "is greater than the max allowed TTL"},
		{"impersonation", reviewsTok, &securityv1alpha1.IstioCertificateRequest{Csr: string(csrFor(t)), Metadata: &structpb.Struct{Fields: map[string]*structpb.Value{
			"ImpersonatedIdentity": structpb.NewStringValue("spiffe://cluster.local/ns/default/sa/admin")}}},
			codes.Unauthenticated, "request impersonation authentication failure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := cl.CreateCertificate(ctxWith(t, tt.token), tt.req)
			st, _ := status.FromError(err)
			if st.Code() != tt.code || !strings.Contains(st.Message(), tt.want) {
				t.Fatalf("got %s %q, want %s with %q", st.Code(), st.Message(), tt.code, tt.want)
			}
		})
	}

	// The identity is the token's: the CSR asks for none, the certificate carries the
	// token's service account, with the requested lifetime and Istio's chain layout.
	key, _ := pki.NewKey(pki.RSA2048)
	csr, _ := pki.NewCSR(key, nil, nil)
	resp, err := cl.CreateCertificate(ctxWith(t, reviewsTok), &securityv1alpha1.IstioCertificateRequest{Csr: string(csr), ValidityDuration: 3600,
		Metadata: &structpb.Struct{Fields: map[string]*structpb.Value{"CertSigner": structpb.NewStringValue("")}}})
	if err != nil {
		t.Fatal(err)
	}
	leaf := leafOf(t, resp.GetCertChain())
	if id, err := spiffe.FromCertificate(leaf); err != nil || id != reviews {
		t.Fatalf("identity %v (%v), want the token's %s", id, err, reviews)
	}
	if got := leaf.NotAfter.Sub(leaf.NotBefore) - pki.ClockSkew; got != time.Hour {
		t.Errorf("lifetime %s, want the requested hour", got)
	}
	if n := len(resp.GetCertChain()); n != 2 || resp.GetCertChain()[1] != string(c.RootsPEM()) {
		t.Errorf("chain of %d, want leaf + root", n)
	}

	// That certificate then authenticates its holder without a token (Istio's client
	// certificate authenticator): a renewal over mutual TLS.
	mtls := client(t, c, addr, &tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf})
	resp, err = mtls.CreateCertificate(ctxWith(t, ""), &securityv1alpha1.IstioCertificateRequest{Csr: string(csrFor(t, reviews.String()))})
	if err != nil {
		t.Fatalf("renewal with the client certificate: %v", err)
	}
	if id, _ := spiffe.FromCertificate(leafOf(t, resp.GetCertChain())); id != reviews {
		t.Errorf("renewed identity %s", id)
	}
}

// TestClientCertOfAnotherTrustDomain: a verified client certificate of another trust
// domain does not authenticate.
func TestClientCertOfAnotherTrustDomain(t *testing.T) {
	c := newCA(t, Options{TrustDomain: "cluster.local"})
	other, _ := url.Parse("spiffe://example.org/ns/default/sa/x")
	cert, err := c.Authority().Issue(pki.Template{URIs: []*url.URL{other}, Usage: pki.ClientAuth, Validity: time.Hour}, pki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, c, ClientCerts{TrustDomain: "cluster.local"})
	_, err = client(t, c, addr, cert).CreateCertificate(ctxWith(t, ""), &securityv1alpha1.IstioCertificateRequest{Csr: string(csrFor(t))})
	if st, _ := status.FromError(err); st.Code() != codes.Unauthenticated || !strings.Contains(st.Message(), "is not in trust domain cluster.local") {
		t.Fatalf("got %v", err)
	}
}
