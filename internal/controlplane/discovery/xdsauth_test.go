package discovery

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
	securityv1alpha1 "istio.io/api/security/v1alpha1"

	"github.com/lucid-mesh/lucid/internal/contract"
	"github.com/lucid-mesh/lucid/internal/controlplane/ca"
	"github.com/lucid-mesh/lucid/internal/pki"
)

// xdsCall opens an ADS stream on cc as node (with metadata) and returns the first
// answer's error: nil when configuration came.
func xdsCall(ctx context.Context, t *testing.T, cc *grpc.ClientConn, id string, meta map[string]any) error {
	t.Helper()
	md, err := structpb.NewStruct(meta)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := discoverygrpc.NewAggregatedDiscoveryServiceClient(cc).StreamAggregatedResources(ctx)
	if err != nil {
		return err
	}
	if err := st.Send(&discoverygrpc.DiscoveryRequest{Node: &corepb.Node{Id: id, Metadata: md}, TypeUrl: contract.ClusterTypeURL}); err != nil {
		return err
	}
	_, err = st.Recv()
	return err
}

// The TLS port serves xDS as istiod's 15012: a proxy authenticated by its mesh
// certificate (or its token) gets the configuration of its own identity only; another
// namespace's or service account's node is refused with PermissionDenied naming both
// identities; no credential is Unauthenticated. The plaintext port still serves any node
// and its CA refuses to answer there.
func TestXDSOnTheTLSPort(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "mesh")
	if err := os.Mkdir(cfg, 0o755); err != nil {
		t.Fatal(err)
	}
	state := StateDirFor(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan string, 1)
	go func() {
		done <- Run(ctx, Options{ConfigDir: cfg, GRPCAddr: "127.0.163.32:0", CA: CAOptions{Addr: "127.0.163.32:15012"},
			Ready: func(a string) { ready <- a }})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	var plainAddr string
	select {
	case plainAddr = <-ready:
	case <-time.After(20 * time.Second):
		t.Fatal("discovery not ready")
	}
	rootsPEM, err := os.ReadFile(filepath.Join(state, RootCertFile))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(rootsPEM)
	tok, err := ca.IssueLocalToken(filepath.Join(state, TokensFileName), "shop/web", "shop", "web-sa")
	if err != nil {
		t.Fatal(err)
	}
	dial := func(cert *tls.Certificate) *grpc.ClientConn {
		c := &tls.Config{RootCAs: roots, ServerName: "127.0.163.32", MinVersion: tls.VersionTLS12}
		if cert != nil {
			c.Certificates = []tls.Certificate{*cert}
		}
		cc, err := grpc.NewClient("127.0.163.32:15012", grpc.WithTransportCredentials(credentials.NewTLS(c)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		return cc
	}
	// The workload's certificate, from the CA on the same port.
	key, _ := pki.NewKey(pki.ECDSAP256)
	csr, _ := pki.NewCSR(key, nil, nil)
	resp, err := securityv1alpha1.NewIstioCertificateServiceClient(dial(nil)).CreateCertificate(
		metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok),
		&securityv1alpha1.IstioCertificateRequest{Csr: string(csr), ValidityDuration: 3600})
	if err != nil {
		t.Fatal(err)
	}
	var chain [][]byte
	for _, p := range resp.GetCertChain() {
		certs, err := pki.ParseCerts([]byte(p))
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, certs[0].Raw)
	}
	cert := &tls.Certificate{Certificate: chain, PrivateKey: key}
	web := dial(cert)

	own := map[string]any{"NAMESPACE": "shop", "SERVICE_ACCOUNT": "web-sa"}
	if err := xdsCall(ctx, t, web, "sidecar~127.0.163.33~web-1.shop~shop.svc.cluster.local", own); err != nil {
		t.Errorf("the proxy's own node over mTLS: %v", err)
	}
	refused := []struct {
		name, id string
		meta     map[string]any
		want     string
	}{
		{"another namespace", "sidecar~127.0.163.34~pay-1.payments~payments.svc.cluster.local",
			map[string]any{"NAMESPACE": "payments", "SERVICE_ACCOUNT": "web-sa"}, "namespace payments"},
		{"another service account", "sidecar~127.0.163.33~web-1.shop~shop.svc.cluster.local",
			map[string]any{"NAMESPACE": "shop", "SERVICE_ACCOUNT": "admin"}, "service account admin"},
		{"metadata and node ID disagree", "sidecar~127.0.163.34~pay-1.payments~payments.svc.cluster.local",
			map[string]any{"NAMESPACE": "shop", "SERVICE_ACCOUNT": "web-sa"}, "node ID's namespace payments and its NAMESPACE metadata shop disagree"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			err := xdsCall(ctx, t, web, tt.id, tt.meta)
			st, _ := status.FromError(err)
			if st.Code() != codes.PermissionDenied || !strings.Contains(st.Message(), "authenticated as spiffe://cluster.local/ns/shop/sa/web-sa") || !strings.Contains(st.Message(), tt.want) {
				t.Errorf("got %s %q, want PermissionDenied naming spiffe://cluster.local/ns/shop/sa/web-sa and %q", st.Code(), st.Message(), tt.want)
			}
		})
	}
	// The token authenticates xDS too (a proxy before its certificate).
	if err := xdsCall(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok), t, dial(nil), "sidecar~127.0.163.33~web-1.shop~shop.svc.cluster.local", own); err != nil {
		t.Errorf("the proxy's own node with its token: %v", err)
	}
	if err := xdsCall(ctx, t, dial(nil), "sidecar~127.0.163.33~web-1.shop~shop.svc.cluster.local", own); status.Code(err) != codes.Unauthenticated {
		t.Errorf("no credential: %v, want Unauthenticated", err)
	}

	plain, err := grpc.NewClient(plainAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := xdsCall(ctx, t, plain, "sidecar~127.0.163.34~pay-1.payments~payments.svc.cluster.local", map[string]any{}); err != nil {
		t.Errorf("the plaintext port: %v", err)
	}
	_, err = securityv1alpha1.NewIstioCertificateServiceClient(plain).CreateCertificate(
		metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok),
		&securityv1alpha1.IstioCertificateRequest{Csr: string(csr), ValidityDuration: 3600})
	if st, _ := status.FromError(err); st.Code() != codes.Unauthenticated || !strings.Contains(st.Message(), "only on the control plane's TLS port") {
		t.Errorf("the CA on the plaintext port: %v", err)
	}
}
