package discovery

import (
	"slices"
	"testing"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lucid-mesh/lucid/internal/kube/inject"
)

// The webhook injects sidecars that ask the CA for an identity in the mesh's trust domain
// (meshConfig.trustDomain), on the control plane's TLS port when it runs the CA.
func TestInjectConfigTrustDomain(t *testing.T) {
	o := Options{CA: CAOptions{Addr: ":15012"}, Webhook: WebhookOptions{Inject: inject.Config{Image: "lucid:test"}}}
	cfg := injectConfig(o, &meshv1alpha1.MeshConfig{TrustDomain: "example.org"}, "istio-system")
	if cfg.TrustDomain != "example.org" || cfg.DiscoveryAddress != "lucid-discovery.istio-system.svc:15012" {
		t.Fatalf("inject config: trust domain %q, discovery %q", cfg.TrustDomain, cfg.DiscoveryAddress)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "web"}}}}
	res, err := inject.Pod(cfg, inject.Request{Pod: pod})
	if err != nil || !res.Injected {
		t.Fatalf("inject: %v %s", err, res.Reason)
	}
	var args []string
	for _, c := range res.Pod.Spec.Containers {
		if c.Name == inject.ProxyContainerName {
			args = c.Args
		}
	}
	if i := slices.Index(args, "--trust-domain"); i < 0 || i+1 >= len(args) || args[i+1] != "example.org" {
		t.Errorf("istio-proxy args %q lack --trust-domain example.org", args)
	}
}
