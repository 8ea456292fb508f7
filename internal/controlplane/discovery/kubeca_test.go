package discovery

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	securityv1alpha1 "istio.io/api/security/v1alpha1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/lucid-mesh/lucid/internal/controlplane/ca"
	"github.com/lucid-mesh/lucid/internal/controlplane/ca/kubeca"
	"github.com/lucid-mesh/lucid/internal/kube/install"
	"github.com/lucid-mesh/lucid/internal/kube/kubeclient"
	"github.com/lucid-mesh/lucid/internal/testutil"
	"github.com/lucid-mesh/lucid/internal/testutil/catest"
	"github.com/lucid-mesh/lucid/internal/testutil/kubetest"
)

// kubeToken is what the kubelet projects into a pod at /var/run/secrets/tokens/istio-token:
// a token of service account ns/sa with audience istio-ca (minted with the TokenRequest
// API: no kubelet runs).
func kubeToken(ctx context.Context, t *testing.T, c *kubetest.Cluster, ns, sa string) string {
	t.Helper()
	tok, err := c.Token(ctx, ns, sa, ca.DefaultAudience)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// `lucid discovery --kubernetes --ca-addr` with exactly the permissions `lucid install`
// grants: the CA is kept in istio-ca-secret, its roots are published in every namespace,
// a pod's istio-ca token (TokenReview) gets a certificate for its own service account
// only, and xDS on the TLS port serves that identity's node and refuses another's.
func TestKubernetesCA(t *testing.T) {
	c := kubetest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adm, err := c.Dynamic()
	if err != nil {
		t.Fatal(err)
	}
	for _, sa := range []string{"web", "other"} {
		if _, err := c.ServiceAccountConfig(ctx, "shop", sa, nil); err != nil {
			t.Fatal(err)
		}
	}
	rules := append(install.DiscoveryClusterRules(), // + the Role on its namespace's Secrets
		rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "create"}})
	cfg, err := c.ServiceAccountConfig(ctx, install.DefaultNamespace, install.Name, rules)
	if err != nil {
		t.Fatal(err)
	}
	clients, err := kubeclient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testutil.Buffer{}
	rctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(rctx, Options{GRPCAddr: "127.0.163.36:0", Logger: slog.New(slog.NewTextHandler(logs, nil)),
			Kube:    KubeOptions{Enabled: true, Clients: clients},
			Webhook: WebhookOptions{Namespace: install.DefaultNamespace},
			CA:      CAOptions{Addr: "127.0.163.36:15012"}})
	}()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if t.Failed() {
			t.Logf("discovery logs:\n%s", logs.String())
		}
	}()

	var rootsPEM string
	testutil.Eventually(t, 30*time.Second, "ConfigMap shop/istio-ca-root-cert", func() bool {
		u, err := adm.Resource(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}).Namespace("shop").Get(ctx, kubeca.RootCertConfigMap, metav1.GetOptions{})
		if err != nil {
			return false
		}
		rootsPEM, _, _ = unstructured.NestedString(u.Object, "data", kubeca.RootCertKey)
		return rootsPEM != ""
	})
	if _, err := adm.Resource(schema.GroupVersionResource{Version: "v1", Resource: "secrets"}).Namespace(install.DefaultNamespace).Get(ctx, kubeca.SelfSignedSecret, metav1.GetOptions{}); err != nil {
		t.Errorf("the CA is not kept in Istio's Secret: %v", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(rootsPEM)) {
		t.Fatalf("no root in the ConfigMap: %q", rootsPEM)
	}
	// As an injected sidecar: the Service's name, verified with the published roots.
	cc, err := grpc.NewClient("127.0.163.36:15012", grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		RootCAs: roots, ServerName: install.Name + "." + install.DefaultNamespace + ".svc", MinVersion: tls.VersionTLS12})))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	sign := func(tok string, sans ...string) (*securityv1alpha1.IstioCertificateResponse, error) {
		return catest.Request(ctx, cc, tok, sans...)
	}
	webTok, otherTok := kubeToken(ctx, t, c, "shop", "web"), kubeToken(ctx, t, c, "shop", "other")
	resp, err := sign(webTok)
	if err != nil {
		t.Fatalf("the pod's istio-ca token: %v", err)
	}
	if id := catest.IssuedID(resp); id != "spiffe://cluster.local/ns/shop/sa/web" {
		t.Fatalf("issued %q, want spiffe://cluster.local/ns/shop/sa/web", id)
	}
	_, err = sign(otherTok, "spiffe://cluster.local/ns/shop/sa/web")
	if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "caller authenticated as spiffe://cluster.local/ns/shop/sa/other") {
		t.Errorf("another service account's token asking for web's identity: %v", err)
	}

	webCtx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+webTok)
	if err := xdsCall(webCtx, t, cc, "sidecar~127.0.163.37~web-1.shop~shop.svc.cluster.local", map[string]any{"NAMESPACE": "shop", "SERVICE_ACCOUNT": "web"}); err != nil {
		t.Errorf("xDS for the token's own identity: %v", err)
	}
	err = xdsCall(webCtx, t, cc, "sidecar~127.0.163.38~other-1.shop~shop.svc.cluster.local", map[string]any{"NAMESPACE": "shop", "SERVICE_ACCOUNT": "other"})
	if st, _ := status.FromError(err); st.Code() != codes.PermissionDenied || !strings.Contains(st.Message(), "authenticated as spiffe://cluster.local/ns/shop/sa/web") || !strings.Contains(st.Message(), "service account other") {
		t.Errorf("xDS for another service account's node: %v, want PermissionDenied naming both", err)
	}
}
