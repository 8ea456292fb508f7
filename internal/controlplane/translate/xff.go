package translate

import (
	"encoding/json"

	"sigs.k8s.io/yaml"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// numTrustedProxies is a gateway HCM's xff_num_trusted_hops, as Istio sets it from the
// gateway's proxy configuration: gatewayTopology.numTrustedProxies of the workload's
// `proxy.istio.io/config` annotation when it names it, else of
// meshConfig.defaultConfig.gatewayTopology, else 0. With use_remote_address (every
// gateway), the client address (remote.ip, remoteIpBlocks, x-envoy-external-address) is
// then the Nth address from the right of x-forwarded-for, the proxies in front of the
// gateway being trusted to append it. An annotation that cannot be read leaves the
// mesh's value.
func (g *generator) numTrustedProxies() uint32 {
	n := g.m.DefaultGatewayTopology().GetNumTrustedProxies()
	if w := g.m.Workload(g.p); w != nil && w.Config != nil {
		if v, ok, err := AnnotatedTrustedProxies(w.Config.Annotations[model.ProxyConfigAnnotation]); ok && err == nil {
			n = v
		}
	}
	return n
}

// AnnotatedTrustedProxies reads gatewayTopology.numTrustedProxies from a
// `proxy.istio.io/config` annotation (ProxyConfig as YAML or JSON): ok when the
// annotation sets it (0 included: it overrides the mesh's default, as Istio merges the
// annotation field by field over meshConfig.defaultConfig); an error names what is wrong.
func AnnotatedTrustedProxies(annotation string) (n uint32, ok bool, err error) {
	if annotation == "" {
		return 0, false, nil
	}
	js, err := yaml.YAMLToJSON([]byte(annotation))
	if err != nil {
		return 0, false, err
	}
	var pc struct {
		GatewayTopology *struct {
			NumTrustedProxies *uint32 `json:"numTrustedProxies"`
		} `json:"gatewayTopology"`
	}
	if err := json.Unmarshal(js, &pc); err != nil {
		return 0, false, err
	}
	if pc.GatewayTopology == nil || pc.GatewayTopology.NumTrustedProxies == nil {
		return 0, false, nil
	}
	return *pc.GatewayTopology.NumTrustedProxies, true, nil
}
