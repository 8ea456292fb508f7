package inject

import (
	"net"

	corev1 "k8s.io/api/core/v1"
)

// Where the workload identity's files are in istio-proxy, as Istio injects them: the
// pod's service-account token for audience istio-ca (volume istio-token, projected by
// the kubelet and rotated in place) and the mesh roots from ConfigMap istio-ca-root-cert
// (volume istiod-ca-cert), which the control plane publishes in every namespace.
const (
	TokenPath     = "/var/run/secrets/tokens/istio-token" //nolint:gosec // G101: a path, not a credential
	RootCertPath  = "/var/run/secrets/istio/root-cert.pem"
	RootConfigMap = "istio-ca-root-cert"
	plaintextXDS  = "15010"
)

var (
	rootCertMount  = corev1.VolumeMount{Name: "istiod-ca-cert", MountPath: "/var/run/secrets/istio"}
	rootCertVolume = corev1.Volume{Name: "istiod-ca-cert", VolumeSource: corev1.VolumeSource{
		ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: RootConfigMap}},
	}}
)

// hasIdentity reports whether sidecars that reach the control plane at addr get a
// workload identity: they do on its TLS port (15012, the CA's too), not on the
// plaintext port 15010, which serves no certificates (Istio's agent also talks
// plaintext to a :15010 address).
func hasIdentity(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	return err == nil && port != plaintextXDS
}

// identityArgs point the sidecar's agent at the CA (the discovery address: one TLS port
// serves both) with the pod's token and the mesh roots; it then also gets xDS over TLS.
// A mesh whose trustDomain is not cluster.local (the agent's default) names it: the
// agent asks for, and expects, an identity in that trust domain (Istio's injector hands
// the mesh config to the agent likewise).
func identityArgs(addr, trustDomain string) []string {
	if !hasIdentity(addr) {
		return nil
	}
	args := []string{"--ca-address", addr, "--ca-root-cert", RootCertPath, "--ca-token-file", TokenPath}
	if trustDomain != "" && trustDomain != defaultTrustDomain {
		args = append(args, "--trust-domain", trustDomain)
	}
	return args
}

// defaultTrustDomain is meshConfig.trustDomain's default, the agent's too.
const defaultTrustDomain = "cluster.local"
