package webhook

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/lucid-mesh/lucid/internal/kube/selfcert"
)

var (
	namespacesGVR = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	secretsGVR    = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	mutatingGVR   = schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "mutatingwebhookconfigurations"}
)

// APINamespaces reads namespaces through the API server.
type APINamespaces struct{ Client dynamic.Interface }

// NamespaceLabels implements NamespaceLabels.
func (n APINamespaces) NamespaceLabels(ctx context.Context, name string) (map[string]string, error) {
	u, err := n.Client.Resource(namespacesGVR).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get namespace %s: %w", name, err)
	}
	return u.GetLabels(), nil
}

// Keys of the CA Secret.
const (
	caCertKey = "ca-cert.pem"
	caKeyKey  = "ca-key.pem"
	// DefaultCAValidity is the lifetime of a CA Lucid creates.
	DefaultCAValidity = 10 * 365 * 24 * time.Hour
)

// LoadOrCreateCA returns the webhook CA kept in Secret namespace/name, creating both when
// the Secret does not exist. Every replica of the control plane uses the same CA, so the
// caBundle they patch agrees; a replica that loses the creation race reads the winner's.
func LoadOrCreateCA(ctx context.Context, c dynamic.Interface, namespace, name string, validity time.Duration) (*selfcert.Authority, bool, error) {
	secrets := c.Resource(secretsGVR).Namespace(namespace)
	where := fmt.Sprintf("secret %s/%s", namespace, name)
	u, err := secrets.Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		ca, err := caFromSecret(u)
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w (delete it to have Lucid create a new CA)", where, err)
		}
		return ca, false, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, false, fmt.Errorf("read the webhook CA from %s: %w", where, err)
	}
	if validity <= 0 {
		validity = DefaultCAValidity
	}
	ca, err := selfcert.NewAuthority("lucid-webhook-ca."+namespace, validity, time.Now())
	if err != nil {
		return nil, false, err
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{"name": name, "namespace": namespace,
			"labels": map[string]any{"app.kubernetes.io/name": "lucid"}},
		"type": "Opaque",
		"data": map[string]any{
			caCertKey: base64.StdEncoding.EncodeToString(ca.CertPEM()),
			caKeyKey:  base64.StdEncoding.EncodeToString(ca.KeyPEM()),
		},
	}}
	if _, err := secrets.Create(ctx, obj, metav1.CreateOptions{FieldManager: "lucid-discovery"}); err != nil {
		if !apierrors.IsAlreadyExists(err) {
			return nil, false, fmt.Errorf("store the webhook CA in %s: %w", where, err)
		}
		// Another replica created it first: use theirs.
		u, err := secrets.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, false, fmt.Errorf("read the webhook CA from %s: %w", where, err)
		}
		theirs, err := caFromSecret(u)
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", where, err)
		}
		return theirs, false, nil
	}
	return ca, true, nil
}

func caFromSecret(u *unstructured.Unstructured) (*selfcert.Authority, error) {
	data, _, _ := unstructured.NestedStringMap(u.Object, "data")
	dec := func(k string) ([]byte, error) {
		v, ok := data[k]
		if !ok {
			return nil, fmt.Errorf("no data key %q", k)
		}
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return nil, fmt.Errorf("data key %q: %w", k, err)
		}
		return b, nil
	}
	certPEM, err := dec(caCertKey)
	if err != nil {
		return nil, err
	}
	keyPEM, err := dec(caKeyKey)
	if err != nil {
		return nil, err
	}
	return selfcert.LoadAuthority(certPEM, keyPEM)
}

// patchCABundle sets caBundle on every webhook of the MutatingWebhookConfiguration name
// that does not carry it yet, and returns how many it changed. Each change is guarded by a
// test of the webhook's name, so a configuration edited meanwhile fails the patch instead
// of patching the wrong webhook.
func patchCABundle(ctx context.Context, c dynamic.Interface, name string, bundle []byte) (int, error) {
	res := c.Resource(mutatingGVR)
	u, err := res.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return 0, fmt.Errorf("get MutatingWebhookConfiguration %s: %w", name, err)
	}
	hooks, _, err := unstructured.NestedSlice(u.Object, "webhooks")
	if err != nil {
		return 0, fmt.Errorf("MutatingWebhookConfiguration %s: webhooks: %w", name, err)
	}
	want := base64.StdEncoding.EncodeToString(bundle)
	var ops []map[string]any
	for i, h := range hooks {
		m, _ := h.(map[string]any)
		got, _, _ := unstructured.NestedString(m, "clientConfig", "caBundle")
		if got == want {
			continue
		}
		hookName, _, _ := unstructured.NestedString(m, "name")
		ops = append(ops,
			map[string]any{"op": "test", "path": fmt.Sprintf("/webhooks/%d/name", i), "value": hookName},
			map[string]any{"op": "add", "path": fmt.Sprintf("/webhooks/%d/clientConfig/caBundle", i), "value": want})
	}
	if len(ops) == 0 {
		return 0, nil
	}
	body, err := json.Marshal(ops)
	if err != nil {
		return 0, fmt.Errorf("encode caBundle patch: %w", err)
	}
	if _, err := res.Patch(ctx, name, types.JSONPatchType, body, metav1.PatchOptions{FieldManager: "lucid-discovery"}); err != nil {
		return 0, fmt.Errorf("patch caBundle of MutatingWebhookConfiguration %s: %w", name, err)
	}
	return len(ops) / 2, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
