package kubeca

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	securityv1alpha1 "istio.io/api/security/v1alpha1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"github.com/lucid-mesh/lucid/internal/controlplane/ca"
	"github.com/lucid-mesh/lucid/internal/pki"
	"github.com/lucid-mesh/lucid/internal/pki/spiffe"
	"github.com/lucid-mesh/lucid/internal/testutil/catest"
	"github.com/lucid-mesh/lucid/internal/testutil/kubetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(kubetest.SharedMain(m),
		goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run.func1"),
	)
}

// discoveryRBAC is what the control plane's service account needs for the CA.
var discoveryRBAC = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "create"}},
	{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// discovery is a dynamic client with the control plane's own, limited identity.
func discovery(t *testing.T, c *kubetest.Cluster, ns string) dynamic.Interface {
	t.Helper()
	cfg, err := c.ServiceAccountConfig(ctxT(t), ns, "lucid-discovery", discoveryRBAC)
	if err != nil {
		t.Fatal(err)
	}
	d, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func admin(t *testing.T, c *kubetest.Cluster) dynamic.Interface {
	t.Helper()
	d, err := c.Dynamic()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestSelfSignedSecret: the first start creates istio-ca-secret as Istio does, a restart
// and every replica use that root.
func TestSelfSignedSecret(t *testing.T) {
	c := kubetest.Shared(t)
	ctx := ctxT(t)
	store := Secrets{Client: discovery(t, c, "cp-self"), Namespace: "cp-self"}
	first, err := ca.Load(ctx, store, ca.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if first.Origin != ca.Created || first.Where != "secret cp-self/istio-ca-secret" {
		t.Fatalf("first start: %s from %s", first.Origin, first.Where)
	}
	u, err := admin(t, c).Resource(secretsGVR).Namespace("cp-self").Get(ctx, SelfSignedSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if typ, _, _ := unstructured.NestedString(u.Object, "type"); typ != SelfSignedType {
		t.Errorf("secret type %q, want %q", typ, SelfSignedType)
	}
	data, _, _ := unstructured.NestedStringMap(u.Object, "data")
	for _, k := range []string{pki.FileCACert, pki.FileCAKey, pki.FileRootCert} {
		if data[k] == "" {
			t.Errorf("secret has no %s", k)
		}
	}

	var wg sync.WaitGroup
	for range 3 { // a restart and two more replicas
		wg.Go(func() {
			l, err := ca.Load(ctx, store, ca.LoadOptions{})
			if err != nil {
				t.Error(err)
				return
			}
			if l.Origin != ca.Kept || !l.Authority.Cert.Equal(first.Authority.Cert) {
				t.Errorf("restart: %s, same root %v", l.Origin, l.Authority.Cert.Equal(first.Authority.Cert))
			}
		})
	}
	wg.Wait()

	race := Secrets{Client: discovery(t, c, "cp-race"), Namespace: "cp-race"}
	roots := make([]*x509.Certificate, 3)
	for i := range roots {
		wg.Go(func() {
			l, err := ca.Load(ctx, race, ca.LoadOptions{})
			if err != nil {
				t.Error(err)
				return
			}
			roots[i] = l.Authority.Cert
		})
	}
	wg.Wait()
	for _, r := range roots[1:] {
		if r == nil || !r.Equal(roots[0]) {
			t.Fatal("replicas starting together ended with different roots")
		}
	}
}

func secret(t *testing.T, d dynamic.Interface, ns, name string, data map[string][]byte) {
	t.Helper()
	enc := map[string]any{}
	for k, v := range data {
		enc[k] = base64.StdEncoding.EncodeToString(v)
	}
	obj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{"name": name, "namespace": ns}, "data": enc}}
	if _, err := d.Resource(secretsGVR).Namespace(ns).Create(ctxT(t), obj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestPluggedCacerts: an operator's intermediate CA in Secret cacerts is used (over a
// self-signed one), and the certificates it issues chain to the operator's root; an
// incomplete cacerts is refused with the Secret and the missing keys named.
func TestPluggedCacerts(t *testing.T) {
	c := kubetest.Shared(t)
	ctx := ctxT(t)
	root, err := pki.NewRoot(pki.RootOptions{Org: "corp root", Validity: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	inter, err := root.NewIntermediate(pki.RootOptions{CommonName: "corp mesh CA", Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	f, _ := inter.Files()
	d := discovery(t, c, "cp-plugged")
	store := Secrets{Client: d, Namespace: "cp-plugged"}
	if _, err := ca.Load(ctx, store, ca.LoadOptions{}); err != nil { // a self-signed CA from an earlier start
		t.Fatal(err)
	}
	secret(t, admin(t, c), "cp-plugged", PluggedSecret, map[string][]byte{
		pki.FileCACert: f.CACert, pki.FileCAKey: f.CAKey, pki.FileCertChain: f.CertChain, pki.FileRootCert: f.RootCert})
	l, err := ca.Load(ctx, store, ca.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Origin != ca.Plugged || !l.Authority.Cert.Equal(inter.Cert) || l.Where != "secret cp-plugged/cacerts" {
		t.Fatalf("loaded %s from %s, want the plugged intermediate", l.Origin, l.Where)
	}
	mesh, err := ca.New(l.Authority, ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := pki.NewKey(pki.ECDSAP256)
	csr, _ := pki.NewCSR(key, nil, nil)
	chain, err := mesh.Sign(csr, spiffe.ID{TrustDomain: "cluster.local", Namespace: "a", ServiceAccount: "b"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := pki.ParseCerts([]byte(chain[0]))
	inters := x509.NewCertPool()
	inters.AddCert(inter.Cert)
	if _, err := leaf[0].Verify(x509.VerifyOptions{Roots: root.RootPool(), Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("a workload certificate does not chain to the operator's root: %v", err)
	}

	partial := Secrets{Client: discovery(t, c, "cp-partial"), Namespace: "cp-partial"}
	secret(t, admin(t, c), "cp-partial", PluggedSecret, map[string][]byte{pki.FileCACert: f.CACert, pki.FileCAKey: f.CAKey})
	_, err = ca.Load(ctx, partial, ca.LoadOptions{})
	if err == nil || !strings.Contains(err.Error(), "secret cp-partial/cacerts: incomplete plugged-in CA: cert-chain.pem, root-cert.pem missing") {
		t.Fatalf("incomplete cacerts: %v", err)
	}
}

// token is a token of service account ns/sa for audiences (the kubelet's projected token).
func token(t *testing.T, c *kubetest.Cluster, ns, sa string, audiences ...string) string {
	t.Helper()
	tok, err := c.Token(ctxT(t), ns, sa, audiences...)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestTokenReview: a pod's service-account token (audience istio-ca), reviewed by the
// real API server with the control plane's own RBAC, gets a certificate for exactly its
// service account; a token for another audience, a forged one, a non-service-account one
// and a CSR asking for another identity are refused with Istio's codes.
func TestTokenReview(t *testing.T) {
	c := kubetest.Shared(t)
	ctx := ctxT(t)
	if _, err := c.ServiceAccountConfig(ctx, "bookinfo", "bookinfo-reviews", nil); err != nil {
		t.Fatal(err)
	}
	d := discovery(t, c, "istio-system")
	loaded, err := ca.Load(ctx, Secrets{Client: d, Namespace: "istio-system"}, ca.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mesh, err := ca.New(loaded.Authority, ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	addr := catest.Serve(t, "127.0.117.40", mesh, ca.ClientCerts{}, ca.KubeTokens{Reviewer: TokenReviewer{Client: d}})
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		RootCAs: mesh.Authority().RootPool(), ServerName: "istiod.istio-system.svc", MinVersion: tls.VersionTLS12})))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	call := func(tok string, csrSANs ...string) (*securityv1alpha1.IstioCertificateResponse, error) {
		return catest.Request(ctx, cc, tok, csrSANs...)
	}

	podToken := token(t, c, "bookinfo", "bookinfo-reviews", ca.DefaultAudience)
	resp, err := call(podToken)
	if err != nil {
		t.Fatalf("the pod's istio-ca token: %v", err)
	}
	if id := catest.IssuedID(resp); id != "spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews" {
		t.Fatalf("issued %q", id)
	}
	_, err = call(podToken, "spiffe://cluster.local/ns/istio-system/sa/lucid-discovery")
	if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "never from the CSR") {
		t.Errorf("a CSR asking for the control plane's identity: %v", err)
	}

	tests := []struct {
		name, token, want string
	}{
		{"token for the API server's audience", token(t, c, "bookinfo", "bookinfo-reviews"), `is invalid for the target audiences ["istio-ca"]`},
		{"forged token", podToken[:len(podToken)-4] + "AAAA", "kubernetes token: the API server did not authenticate the token"},
		{"not a token", "hello", "kubernetes token: the API server did not authenticate the token"},
		{"admin's static token", c.Config.BearerToken, "kubernetes token: the API server did not authenticate the token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := call(tt.token)
			st, _ := status.FromError(err)
			if st.Code() != codes.Unauthenticated || !strings.HasPrefix(st.Message(), "request authenticate failure") || !strings.Contains(st.Message(), tt.want) {
				t.Fatalf("got %s %q, want Unauthenticated with %q", st.Code(), st.Message(), tt.want)
			}
		})
	}

	// Without RBAC for tokenreviews the refusal says so.
	powerless, err := c.ServiceAccountConfig(ctx, "istio-system", "no-review", nil)
	if err != nil {
		t.Fatal(err)
	}
	pd, _ := dynamic.NewForConfig(powerless)
	_, _, err = TokenReviewer{Client: pd}.ReviewToken(ctx, podToken, []string{ca.DefaultAudience})
	if err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Errorf("review without RBAC: %v", err)
	}
}

func TestReviewResult(t *testing.T) {
	tests := []struct {
		name string
		obj  map[string]any
		want string
	}{
		{"error", map[string]any{"status": map[string]any{"error": "token expired"}}, "token expired"},
		{"user", map[string]any{"status": map[string]any{"authenticated": true, "user": map[string]any{
			"username": "alice", "groups": []any{"system:authenticated"}}}}, `the token of "alice" is not a service account's`},
		{"malformed name", map[string]any{"status": map[string]any{"authenticated": true, "user": map[string]any{
			"username": "system:serviceaccount:ns", "groups": []any{"system:serviceaccounts"}}}}, "is not system:serviceaccount:<namespace>:<name>"},
	}
	for _, tt := range tests {
		_, _, err := reviewResult(tt.obj)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}
