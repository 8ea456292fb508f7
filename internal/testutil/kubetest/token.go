package kubetest

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Token mints a token of service account ns/sa for audiences (none: the API server's)
// with the TokenRequest API, as the kubelet does for a pod's projected token (Istio's
// istio-token has audience istio-ca). The service account must exist.
func (c *Cluster) Token(ctx context.Context, ns, sa string, audiences ...string) (string, error) {
	dyn, err := c.Dynamic()
	if err != nil {
		return "", err
	}
	spec := map[string]any{"expirationSeconds": int64(3600)}
	if len(audiences) > 0 {
		aud := make([]any, len(audiences))
		for i, a := range audiences {
			aud[i] = a
		}
		spec["audiences"] = aud
	}
	req := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}}
	req.SetName(sa)
	resp, err := dyn.Resource(ServiceAccounts).Namespace(ns).Create(ctx, req, metav1.CreateOptions{}, "token")
	if err != nil {
		return "", fmt.Errorf("kubetest: token for %s/%s: %w", ns, sa, err)
	}
	tok, _, _ := unstructured.NestedString(resp.Object, "status", "token")
	if tok == "" {
		return "", fmt.Errorf("kubetest: token for %s/%s: empty TokenRequest status", ns, sa)
	}
	return tok, nil
}
