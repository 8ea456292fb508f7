package kubeca

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"github.com/lucid-mesh/lucid/internal/kube/install"
	"github.com/lucid-mesh/lucid/internal/pki"
	"github.com/lucid-mesh/lucid/internal/testutil"
	"github.com/lucid-mesh/lucid/internal/testutil/kubetest"
)

func rootPEM(t *testing.T, org string) []byte {
	t.Helper()
	a, err := pki.NewRoot(pki.RootOptions{Org: org, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return pki.EncodeCerts(a.Roots...)
}

// TestRootPublisher: with the control plane's RBAC as `lucid install` grants it, the
// mesh roots land in ConfigMap istio-ca-root-cert of every namespace (those that exist
// and those created later, not Kubernetes' own), a deleted one is re-created, an edited
// one put back, and a root change reaches them all.
func TestRootPublisher(t *testing.T) {
	c := kubetest.Shared(t)
	ctx := ctxT(t)
	adm := admin(t, c)
	if err := c.CreateNamespace(ctx, "roots-a", nil); err != nil {
		t.Fatal(err)
	}
	cfg, err := c.ServiceAccountConfig(ctx, "cp-roots", install.Name, install.DiscoveryClusterRules())
	if err != nil {
		t.Fatal(err)
	}
	d, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var roots atomic.Pointer[[]byte]
	first := rootPEM(t, "first")
	roots.Store(&first)
	logs := &testutil.Buffer{}
	p := &RootPublisher{Client: d, Roots: func() []byte { return *roots.Load() }, Log: slog.New(slog.NewTextHandler(logs, nil)), Retry: 100 * time.Millisecond}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(rctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if t.Failed() {
			t.Logf("publisher logs:\n%s", logs.String())
		}
	}()
	cms := func(ns string) dynamic.ResourceInterface { return adm.Resource(configMapsGVR).Namespace(ns) }
	published := func(ns string) (string, error) {
		u, err := cms(ns).Get(ctx, RootCertConfigMap, metav1.GetOptions{})
		if err != nil {
			return "", err
		}
		if l := u.GetLabels()["istio.io/config"]; l != "true" {
			return "", fmt.Errorf("label istio.io/config=%q", l)
		}
		v, _, _ := unstructured.NestedString(u.Object, "data", RootCertKey)
		return v, nil
	}
	waitFor := func(ns string, want []byte, what string) {
		t.Helper()
		var got string
		var err error
		testutil.Eventually(t, 20*time.Second, what, func() bool {
			got, err = published(ns)
			return err == nil && got == string(want)
		})
	}

	waitFor("roots-a", first, "the roots in a namespace that existed before the start")
	waitFor("cp-roots", first, "the roots in the control plane's namespace")
	if err := c.CreateNamespace(ctx, "roots-b", nil); err != nil {
		t.Fatal(err)
	}
	waitFor("roots-b", first, "the roots in a namespace created after the start")
	for _, ns := range IgnoredNamespaces {
		if _, err := published(ns); !apierrors.IsNotFound(err) {
			t.Errorf("namespace %s: %v, want no %s (Kubernetes' own namespaces get none, as with istiod)", ns, err, RootCertConfigMap)
		}
	}

	if err := cms("roots-a").Delete(ctx, RootCertConfigMap, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("roots-a", first, "the ConfigMap re-created after its deletion")

	u, err := cms("roots-b").Get(ctx, RootCertConfigMap, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_ = unstructured.SetNestedField(u.Object, "edited by hand", "data", RootCertKey)
	if _, err := cms("roots-b").Update(ctx, u, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("roots-b", first, "the roots put back after an edit")

	next := rootPEM(t, "next")
	roots.Store(&next)
	p.RootsChanged()
	for _, ns := range []string{"roots-a", "roots-b", "cp-roots"} {
		waitFor(ns, next, "the new roots in "+ns)
	}
}
