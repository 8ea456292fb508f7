package analyze

import (
	"fmt"
	"strings"

	"github.com/lucid-mesh/lucid/internal/model"
)

// gatewayReferences is Istio's VirtualService gateway analyzer: IST0101 for a gateway in
// spec.gateways that does not exist, IST0132 when none of the VirtualService's hosts is
// served by the gateway it names (its routes are then on no listener).
func (a *analyzer) gatewayReferences() []Message {
	var out []Message
	for _, v := range a.m.VirtualServices() {
		o := v.Config
		for i, gw := range v.Gateways {
			if gw == model.GatewayMesh {
				continue
			}
			field := fmt.Sprintf("spec.gateways[%d]", i)
			written := gw
			if i < len(specGateways(v)) {
				written = specGateways(v)[i]
			}
			g := a.m.Gateway(gw)
			if g == nil {
				m := at(o, "IST0101", Error, field, fmt.Sprintf("Referenced gateway not found: %q", written))
				m.Detail = fmt.Sprintf("%s resolves to Gateway %s, which does not exist: no gateway serves this VirtualService's routes for it", written, gw)
				m.Fix = "correct the name (namespace/name, or a name in the VirtualService's namespace), or create the Gateway"
				out = append(out, m)
				continue
			}
			if hostsServed(g, v) {
				continue
			}
			m := at(o, "IST0132", Warning, field, fmt.Sprintf("one or more host [%s] defined in VirtualService %s/%s not found in Gateway %s.",
				strings.Join(v.Hosts, " "), o.Namespace, o.Name, gw))
			m.Detail = fmt.Sprintf("Gateway %s serves %s; requests for this VirtualService's hosts get no route there (404 NR)", gw, serverHosts(g))
			m.Fix = "add the hosts to a server of the Gateway, or correct the VirtualService's hosts"
			out = append(out, m)
		}
	}
	return out
}

func specGateways(v *model.VirtualService) []string {
	if vs, ok := v.Config.Spec.(interface{ GetGateways() []string }); ok {
		return vs.GetGateways()
	}
	return nil
}

// hostsServed reports whether a server of g serves one of v's hosts (namespace-scoped
// server hosts included).
func hostsServed(g *model.Gateway, v *model.VirtualService) bool {
	for i, spec := range g.Spec.GetServers() {
		s := model.NewGatewayServer(g, i, spec)
		if len(s.VirtualServiceHosts(v)) > 0 {
			return true
		}
	}
	return false
}

func serverHosts(g *model.Gateway) string {
	var hs []string
	for _, s := range g.Spec.GetServers() {
		hs = append(hs, s.GetHosts()...)
	}
	return "[" + strings.Join(hs, " ") + "]"
}
