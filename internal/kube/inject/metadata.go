package inject

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// metadataEnv is the pod's proxyMetadata (proxy.istio.io/config) as environment variables,
// sorted by name, which Istio's template sets on both istio-proxy and istio-init: the
// agent reads ISTIO_META_DNS_CAPTURE and ISTIO_META_DNS_AUTO_ALLOCATE (DNS proxy), and
// `lucid iptables` ISTIO_META_DNS_CAPTURE (DNS capture rules). nil without metadata.
func (w *injection) metadataEnv() []corev1.EnvVar {
	md := w.ann.proxyMetadata
	if len(md) == 0 {
		return nil
	}
	names := make([]string, 0, len(md))
	for k := range md {
		names = append(names, k)
	}
	slices.Sort(names)
	env := make([]corev1.EnvVar, 0, len(names))
	for _, k := range names {
		env = append(env, corev1.EnvVar{Name: k, Value: md[k]})
	}
	return env
}
