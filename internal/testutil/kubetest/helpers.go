package kubetest

import (
	"context"
	"fmt"
	"strings"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/lucid-mesh/lucid/internal/kube/install"
	"github.com/lucid-mesh/lucid/internal/kube/kubeapply"
)

// Resources tests commonly need with the dynamic client.
var (
	Namespaces      = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	ServiceAccounts = schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}
	CRDs            = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	VirtualServices = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}
)

const fieldManager = "lucid-kubetest"

// Dynamic is a dynamic client with the admin identity.
func (c *Cluster) Dynamic() (dynamic.Interface, error) {
	d, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		return nil, fmt.Errorf("kubetest: dynamic client: %w", err)
	}
	return d, nil
}

// Apply server-side-applies multi-document YAML as the admin (see kubeapply).
func (c *Cluster) Apply(ctx context.Context, yaml string) error {
	return kubeapply.Apply(ctx, c.Config, []byte(yaml), fieldManager)
}

// InstallCRDs applies the Istio CRDs `lucid install` ships (install.CRDs) and waits until
// every one is Established. Applying again is cheap (nothing changes).
func (c *Cluster) InstallCRDs(ctx context.Context) error {
	crds, err := install.CRDs()
	if err != nil {
		return err
	}
	docs, err := kubeapply.Decode(crds)
	if err != nil {
		return err
	}
	if err := kubeapply.Apply(ctx, c.Config, crds, fieldManager); err != nil {
		return err
	}
	names := make([]string, 0, len(docs))
	for _, d := range docs {
		names = append(names, d.Obj.GetName())
	}
	return c.WaitEstablished(ctx, names...)
}

// WaitEstablished waits until each named CustomResourceDefinition has condition
// Established=True (its kind is served), polling until ctx ends (at most a minute).
func (c *Cluster) WaitEstablished(ctx context.Context, names ...string) error {
	dyn, err := c.Dynamic()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, name := range names {
		err := poll(ctx, func() (bool, error) {
			crd, err := dyn.Resource(CRDs).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, nil //nolint:nilerr // not yet there: keep polling
			}
			return conditionTrue(crd, "Established"), nil
		})
		if err != nil {
			return fmt.Errorf("kubetest: CRD %s not established: %w", name, err)
		}
	}
	return nil
}

func conditionTrue(u *unstructured.Unstructured, typ string) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if ok && m["type"] == typ && m["status"] == "True" {
			return true
		}
	}
	return false
}

// CreateNamespace creates a namespace with labels, and its "default" ServiceAccount as the
// controller manager (not running here) would, so that Pods can be created in it.
func (c *Cluster) CreateNamespace(ctx context.Context, name string, labels map[string]string) error {
	ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace"}}
	ns.SetName(name)
	ns.SetLabels(labels)
	dyn, err := c.Dynamic()
	if err != nil {
		return err
	}
	if _, err := dyn.Resource(Namespaces).Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("kubetest: create namespace %s: %w", name, err)
	}
	return c.createDefaultServiceAccount(ctx, name)
}

func (c *Cluster) createDefaultServiceAccount(ctx context.Context, ns string) error {
	dyn, err := c.Dynamic()
	if err != nil {
		return err
	}
	sa := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ServiceAccount"}}
	sa.SetName("default")
	sa.SetNamespace(ns)
	if _, err := dyn.Resource(ServiceAccounts).Namespace(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("kubetest: create %s/default service account: %w", ns, err)
	}
	return nil
}

// ServiceAccountConfig creates ServiceAccount ns/name (and ns if needed), grants it rules
// (cluster-wide through a ClusterRole and ClusterRoleBinding named
// "lucid-kubetest:<ns>:<name>"), requests a token for it and returns a rest.Config with that
// identity: system:serviceaccount:<ns>:<name>. No rules is a valid, powerless identity.
func (c *Cluster) ServiceAccountConfig(ctx context.Context, ns, name string, rules []rbacv1.PolicyRule) (*rest.Config, error) {
	if err := c.CreateNamespace(ctx, ns, nil); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	dyn, err := c.Dynamic()
	if err != nil {
		return nil, err
	}
	sa := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ServiceAccount"}}
	sa.SetName(name)
	sa.SetNamespace(ns)
	if _, err := dyn.Resource(ServiceAccounts).Namespace(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("kubetest: create service account %s/%s: %w", ns, name, err)
	}
	if len(rules) > 0 {
		role := "lucid-kubetest:" + ns + ":" + name
		objs := []any{
			&rbacv1.ClusterRole{
				TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
				ObjectMeta: metav1.ObjectMeta{Name: role},
				Rules:      rules,
			},
			&rbacv1.ClusterRoleBinding{
				TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
				ObjectMeta: metav1.ObjectMeta{Name: role},
				RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role},
				Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: name}},
			},
		}
		var docs []string
		for _, o := range objs {
			u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
			if err != nil {
				return nil, fmt.Errorf("kubetest: RBAC for %s/%s: %w", ns, name, err)
			}
			b, err := (&unstructured.Unstructured{Object: u}).MarshalJSON()
			if err != nil {
				return nil, fmt.Errorf("kubetest: RBAC for %s/%s: %w", ns, name, err)
			}
			docs = append(docs, string(b))
		}
		if err := c.Apply(ctx, strings.Join(docs, "\n---\n")); err != nil {
			return nil, err
		}
	}
	req := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "authentication.k8s.io/v1",
		"kind":       "TokenRequest",
		"spec":       map[string]any{"expirationSeconds": int64(3600)},
	}}
	req.SetName(name)
	resp, err := dyn.Resource(ServiceAccounts).Namespace(ns).Create(ctx, req, metav1.CreateOptions{}, "token")
	if err != nil {
		return nil, fmt.Errorf("kubetest: token for %s/%s: %w", ns, name, err)
	}
	token, _, _ := unstructured.NestedString(resp.Object, "status", "token")
	if token == "" {
		return nil, fmt.Errorf("kubetest: token for %s/%s: empty TokenRequest status", ns, name)
	}
	cfg := rest.AnonymousClientConfig(c.Config)
	cfg.BearerToken = token
	return cfg, nil
}

// poll calls f every 100ms until it reports done, fails, or ctx ends.
func poll(ctx context.Context, f func() (bool, error)) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		done, err := f()
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
