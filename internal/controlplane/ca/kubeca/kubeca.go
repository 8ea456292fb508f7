// Package kubeca is the mesh CA's Kubernetes side, with client-go's dynamic client (no
// typed clientset): Secrets is a ca.Store over Istio's Secrets in the control plane's
// namespace (`cacerts`, the operator's plugged-in CA, and `istio-ca-secret`, the
// self-signed CA), and TokenReviewer checks a workload's service-account token with a
// TokenReview, as istiod does. The control plane's service account needs `get` and
// `create` on secrets in its namespace and `create` on tokenreviews
// (authentication.k8s.io).
package kubeca

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/lucid-mesh/lucid/internal/controlplane/ca"
	"github.com/lucid-mesh/lucid/internal/pki"
)

// Istio's Secret names and type.
const (
	PluggedSecret    = "cacerts"
	SelfSignedSecret = "istio-ca-secret"
	SelfSignedType   = "istio.io/ca-root"
)

var (
	secretsGVR      = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	tokenReviewsGVR = schema.GroupVersionResource{Group: "authentication.k8s.io", Version: "v1", Resource: "tokenreviews"}
)

// Secrets keeps the CA in Secrets of Namespace (the control plane's, istio-system).
type Secrets struct {
	Client    dynamic.Interface
	Namespace string
}

var _ ca.Store = Secrets{}

// Plugged reads Secret cacerts: Istio's four keys, or tls.crt/tls.key/ca.crt.
func (s Secrets) Plugged(ctx context.Context) (*ca.Material, error) {
	data, where, err := s.get(ctx, PluggedSecret)
	if err != nil || data == nil {
		return nil, err
	}
	var bad error
	m, err := ca.PluggedFiles(func(k string) ([]byte, bool) {
		b, ok, err := decode(data, k)
		if err != nil && bad == nil {
			bad = fmt.Errorf("%s: %w", where, err)
		}
		return b, ok
	}, where)
	if bad != nil {
		return nil, bad
	}
	return m, err
}

// SelfSigned reads Secret istio-ca-secret (ca-cert.pem, ca-key.pem; root-cert.pem and
// cert-chain.pem when not empty), the Secret Istio creates, so a mesh moving from Istio
// keeps its root.
func (s Secrets) SelfSigned(ctx context.Context) (*ca.Material, error) {
	data, where, err := s.get(ctx, SelfSignedSecret)
	if err != nil || data == nil {
		return nil, err
	}
	var f pki.Files
	for _, k := range []struct {
		name     string
		dst      *[]byte
		required bool
	}{
		{pki.FileCACert, &f.CACert, true}, {pki.FileCAKey, &f.CAKey, true},
		{pki.FileRootCert, &f.RootCert, false}, {pki.FileCertChain, &f.CertChain, false},
	} {
		b, ok, err := decode(data, k.name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if !ok && k.required {
			return nil, fmt.Errorf("%s: no data key %q (delete the Secret to have a new CA created)", where, k.name)
		}
		*k.dst = b
	}
	return &ca.Material{Files: f, Where: where}, nil
}

// CreateSelfSigned creates Secret istio-ca-secret as Istio does (type istio.io/ca-root).
func (s Secrets) CreateSelfSigned(ctx context.Context, f pki.Files) (string, error) {
	where := "secret " + s.Namespace + "/" + SelfSignedSecret
	enc := base64.StdEncoding.EncodeToString
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{"name": SelfSignedSecret, "namespace": s.Namespace,
			"labels": map[string]any{"app.kubernetes.io/managed-by": "lucid"}},
		"type": SelfSignedType,
		"data": map[string]any{
			pki.FileCACert:   enc(f.CACert),
			pki.FileCAKey:    enc(f.CAKey),
			pki.FileRootCert: enc(f.RootCert),
		},
	}}
	_, err := s.Client.Resource(secretsGVR).Namespace(s.Namespace).Create(ctx, obj, metav1.CreateOptions{FieldManager: "lucid-discovery"})
	switch {
	case apierrors.IsAlreadyExists(err):
		return "", fmt.Errorf("%s: %w", where, ca.ErrExists)
	case err != nil:
		return "", fmt.Errorf("create %s: %w", where, err)
	}
	return where, nil
}

// get returns the Secret's data (nil when the Secret does not exist) and its name for
// messages.
func (s Secrets) get(ctx context.Context, name string) (map[string]string, string, error) {
	where := "secret " + s.Namespace + "/" + name
	u, err := s.Client.Resource(secretsGVR).Namespace(s.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, where, nil
	}
	if err != nil {
		return nil, where, fmt.Errorf("read %s: %w", where, err)
	}
	data, _, err := unstructured.NestedStringMap(u.Object, "data")
	if err != nil {
		return nil, where, fmt.Errorf("%s: data: %w", where, err)
	}
	if data == nil {
		data = map[string]string{}
	}
	return data, where, nil
}

// decode is data key k, base64-decoded; an empty value counts as absent (Istio writes
// empty keys).
func decode(data map[string]string, k string) ([]byte, bool, error) {
	v, ok := data[k]
	if !ok || v == "" {
		return nil, false, nil
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, false, fmt.Errorf("data key %q: %w", k, err)
	}
	return b, true, nil
}

// TokenReviewer reviews tokens with the API server (TokenReview, authentication.k8s.io/v1).
type TokenReviewer struct{ Client dynamic.Interface }

var _ ca.TokenReviewer = TokenReviewer{}

// ReviewToken implements ca.TokenReviewer with Istio's checks: authenticated for one of
// audiences, in group system:serviceaccounts, user system:serviceaccount:<ns>:<sa>.
func (t TokenReviewer) ReviewToken(ctx context.Context, token string, audiences []string) (string, string, error) {
	spec := map[string]any{"token": token}
	if len(audiences) > 0 {
		aud := make([]any, len(audiences))
		for i, a := range audiences {
			aud[i] = a
		}
		spec["audiences"] = aud
	}
	req := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec,
	}}
	resp, err := t.Client.Resource(tokenReviewsGVR).Create(ctx, req, metav1.CreateOptions{})
	if err != nil {
		return "", "", fmt.Errorf("TokenReview: %w", err)
	}
	return reviewResult(resp.Object)
}

func reviewResult(obj map[string]any) (string, string, error) {
	if msg, _, _ := unstructured.NestedString(obj, "status", "error"); msg != "" {
		return "", "", fmt.Errorf("the API server did not authenticate the token: %s", msg)
	}
	if ok, _, _ := unstructured.NestedBool(obj, "status", "authenticated"); !ok {
		return "", "", fmt.Errorf("the API server did not authenticate the token (is its audience %s?)", audienceList(obj))
	}
	groups, _, _ := unstructured.NestedStringSlice(obj, "status", "user", "groups")
	user, _, _ := unstructured.NestedString(obj, "status", "user", "username")
	if !slices.Contains(groups, "system:serviceaccounts") {
		return "", "", fmt.Errorf("the token of %q is not a service account's", user)
	}
	parts := strings.Split(user, ":")
	if len(parts) != 4 || parts[0] != "system" || parts[1] != "serviceaccount" || parts[2] == "" || parts[3] == "" {
		return "", "", fmt.Errorf("user %q is not system:serviceaccount:<namespace>:<name>", user)
	}
	return parts[2], parts[3], nil
}

func audienceList(obj map[string]any) string {
	aud, _, _ := unstructured.NestedStringSlice(obj, "spec", "audiences")
	if len(aud) == 0 {
		return "the API server's"
	}
	return strings.Join(aud, ", ")
}
