package config

import (
	"bytes"

	"github.com/golang/protobuf/jsonpb" //nolint:staticcheck // Istio decodes ProxyConfig the same way (Go durations)
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	"sigs.k8s.io/yaml"
)

// AnnotationProxyConfig is Istio's per-workload proxy configuration: a ProxyConfig in YAML
// or JSON merged over meshConfig.defaultConfig (Lucid reads its
// gatewayTopology.numTrustedProxies for gateways).
const AnnotationProxyConfig = "proxy.istio.io/config"

// proxyConfigAnnotation checks a workload's proxy.istio.io/config annotation: one that is
// not a ProxyConfig is ignored by the control plane, which the warning says.
func (v *validator) proxyConfigAnnotation(o *Object) {
	s, ok := o.Annotations[AnnotationProxyConfig]
	if !ok {
		return
	}
	js, err := yaml.YAMLToJSON([]byte(s))
	if err == nil {
		err = (&jsonpb.Unmarshaler{}).Unmarshal(bytes.NewReader(js), &meshv1alpha1.ProxyConfig{})
	}
	if err != nil {
		v.warnf(key("metadata.annotations", AnnotationProxyConfig), "not a ProxyConfig (%v); it is ignored and the mesh's defaultConfig applies", err)
	}
}
