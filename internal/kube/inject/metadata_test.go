package inject

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// proxyMetadata from proxy.istio.io/config becomes environment on istio-proxy (the agent's
// DNS proxy) and istio-init (`lucid iptables` adds the DNS capture rules), as Istio's
// template sets it.
func TestProxyMetadataEnv(t *testing.T) {
	cfg := `{proxyMetadata: {ISTIO_META_DNS_CAPTURE: "true", ISTIO_META_DNS_AUTO_ALLOCATE: "true"}}`
	res, err := Pod(Config{Image: "img"}, Request{Pod: pod("default", nil, map[string]string{AnnotationProxyConfig: cfg})})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ISTIO_META_DNS_AUTO_ALLOCATE", "ISTIO_META_DNS_CAPTURE"} {
		if got := proxyEnv(t, res.Pod, name); got != "true" {
			t.Errorf("istio-proxy %s = %q, want true", name, got)
		}
	}
	want := []corev1.EnvVar{{Name: "ISTIO_META_DNS_AUTO_ALLOCATE", Value: "true"}, {Name: "ISTIO_META_DNS_CAPTURE", Value: "true"}}
	if len(res.Pod.Spec.InitContainers) != 1 || !reflect.DeepEqual(res.Pod.Spec.InitContainers[0].Env, want) {
		t.Errorf("istio-init env %v, want %v", res.Pod.Spec.InitContainers, want)
	}

	plain, err := Pod(Config{Image: "img"}, Request{Pod: pod("default", nil, nil)})
	if err != nil {
		t.Fatal(err)
	}
	if env := plain.Pod.Spec.InitContainers[0].Env; env != nil {
		t.Errorf("istio-init without proxyMetadata has env %v", env)
	}
}
