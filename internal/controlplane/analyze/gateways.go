package analyze

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
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

// gatewaySelectors is Istio's gateway selector check: IST0101 "Referenced selector not
// found" for a Gateway whose selector matches no workload (WorkloadEntry or pod) in any
// namespace: no gateway serves its servers, so requests to its ports are refused.
func (a *analyzer) gatewaySelectors() []Message {
	var out []Message
	for _, g := range a.m.Gateways() {
		matched := false
		for _, w := range a.m.Workloads() {
			if subsetOf(g.Selector, w.Labels) {
				matched = true
				break
			}
		}
		if matched {
			continue
		}
		sel := selectorString(g.Selector)
		m := at(g.Config, "IST0101", Error, "spec.selector", fmt.Sprintf("Referenced selector not found: %q", sel))
		m.Detail = fmt.Sprintf("no workload has the labels %s: no gateway serves Gateway %s, so its ports (%s) are not opened anywhere",
			labelList(g.Selector), g.Key(), serverPorts(g))
		m.Fix = "correct spec.selector to the gateway's labels (Istio's ingress gateway has istio: ingressgateway), or run a gateway with these labels " +
			"(a WorkloadEntry annotated lucid.dev/proxy: router)"
		out = append(out, m)
	}
	return out
}

// selectorString renders a selector as Kubernetes does (sorted key=value, comma separated).
func selectorString(sel map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(sel)) {
		parts = append(parts, k+"="+sel[k])
	}
	return strings.Join(parts, ",")
}

func serverPorts(g *model.Gateway) string {
	var ps []string
	for _, s := range g.Spec.GetServers() {
		p := strconv.Itoa(int(s.GetPort().GetNumber()))
		if !slices.Contains(ps, p) {
			ps = append(ps, p)
		}
	}
	return strings.Join(ps, ", ")
}

// conflictingGateways is Istio's IST0145: two Gateways with the same selector have servers
// on the same port whose hosts overlap; the gateway serves only one of them.
func (a *analyzer) conflictingGateways() []Message {
	var out []Message
	gws := a.m.Gateways()
	for _, g := range gws {
		sel := selectorString(g.Selector)
		for _, s := range g.Spec.GetServers() {
			port := s.GetPort().GetNumber()
			var with []string
			for _, o := range gws {
				if o == g || selectorString(o.Selector) != sel || slices.Contains(with, o.Key()) {
					continue
				}
				for _, os := range o.Spec.GetServers() {
					if os.GetPort().GetNumber() == port && hostsOverlap(s.GetHosts(), os.GetHosts()) {
						with = append(with, o.Key())
						break
					}
				}
			}
			if len(with) == 0 {
				continue
			}
			slices.Sort(with)
			m := at(g.Config, "IST0145", Error, "spec.servers", fmt.Sprintf("Conflict with gateways %s (workload selector %s, port %d, hosts %s).",
				strings.Join(with, ","), sel, port, strings.Join(s.GetHosts(), ",")))
			m.Detail = "the gateway merges the servers of every Gateway selecting it; for the same port and host only the first created is served " +
				"(a later plaintext server of another protocol, or a TLS server repeating a host, is dropped)"
			m.Fix = "serve the hosts from one Gateway, or give the servers different ports or hosts"
			out = append(out, m)
		}
	}
	return out
}

// hostsOverlap reports whether two server host lists share a host ("ns/" parts ignored,
// wildcards matched either way).
func hostsOverlap(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			x, y := hostPart(x), hostPart(y)
			if model.HostMatches(x, y) || model.HostMatches(y, x) {
				return true
			}
		}
	}
	return false
}

func hostPart(h string) string {
	if _, host, ok := strings.Cut(h, "/"); ok {
		return strings.ToLower(host)
	}
	return strings.ToLower(h)
}

// droppedGatewayServers is LUC0005: a Gateway server the gateway does not serve because
// Istio's merge of the Gateways selecting it drops it: a port already opened by a server
// of another protocol (two Gateways clashing on a port: Istio only logs it), a TLS host
// repeated on a port, a repeated HTTPS port name. It is checked for every router
// WorkloadEntry, and for the labels of a selector no router workload has (on Kubernetes
// the gateway pods' labels are the selector's).
func (a *analyzer) droppedGatewayServers() []Message {
	var proxies []*model.Proxy
	for _, w := range a.m.Workloads() {
		if w.Config.Annotations[model.ProxyAnnotation] == model.ProxyRouter {
			proxies = append(proxies, &model.Proxy{Type: model.ProxyRouter, Name: w.Name, Namespace: w.Namespace, Labels: w.Labels})
		}
	}
	for _, g := range a.m.Gateways() {
		if !slices.ContainsFunc(proxies, func(p *model.Proxy) bool { return subsetOf(g.Selector, p.Labels) }) {
			proxies = append(proxies, &model.Proxy{Type: model.ProxyRouter, Name: "(pods with " + labelList(g.Selector) + ")", Labels: g.Selector})
		}
	}
	var out []Message
	seen := map[string]bool{}
	for _, p := range proxies {
		for _, sk := range a.m.MergeGateways(p).Skipped {
			s := sk.Server
			key := s.Gateway.Key() + s.Field() + sk.Reason
			if seen[key] {
				continue
			}
			seen[key] = true
			m := at(s.Gateway.Config, "LUC0005", Error, s.Field(),
				fmt.Sprintf("Gateway server %s (port %d, %s) is not served: %s", s.Field(), s.Port(), s.Protocol, sk.Reason))
			who := "gateway " + p.Namespace + "/" + p.Name
			if p.Namespace == "" {
				who = "gateway " + p.Name
			}
			m.Detail = fmt.Sprintf("%s merges the Gateways selecting it as Istio does and drops this server; connections to its hosts on port %d reach the other server", who, s.Port())
			m.Fix = "move this server to a free port, or make the servers on the port agree (plaintext HTTP servers share a port; TLS servers need distinct hosts)"
			out = append(out, m)
		}
	}
	return out
}
