package analyze

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	securityv1beta1 "istio.io/api/security/v1beta1"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// The VirtualService checks: Istio's DestinationHostAnalyzer (IST0101 host, mirror host,
// host:port; IST0112; IST0140), DestinationRuleAnalyzer (IST0101 host+subset), GatewayAnalyzer
// (IST0101 gateway, IST0132, IST0165), ConflictingMeshGatewayHostsAnalyzer (IST0109),
// JWTClaimRouteAnalyzer (IST0149), the deprecated-field check (IST0002) and the
// unreachable-rule analysis of Istio's validation (IST0130, IST0131: routes.go). Delegate
// VirtualServices (no hosts) are analysed like the others, as Istio does.

// destination is one destination of a VirtualService with its field path.
type destination struct {
	field string // spec.http[0].route[1].destination
	dest  *networkingv1alpha3.Destination
}

// routeDestinations are the route destinations, tcp then tls then http (Istio's order).
func routeDestinations(vs *networkingv1alpha3.VirtualService) []destination {
	var out []destination
	for i, r := range vs.GetTcp() {
		for j, rd := range r.GetRoute() {
			out = append(out, destination{fmt.Sprintf("spec.tcp[%d].route[%d].destination", i, j), rd.GetDestination()})
		}
	}
	for i, r := range vs.GetTls() {
		for j, rd := range r.GetRoute() {
			out = append(out, destination{fmt.Sprintf("spec.tls[%d].route[%d].destination", i, j), rd.GetDestination()})
		}
	}
	for i, r := range vs.GetHttp() {
		for j, rd := range r.GetRoute() {
			out = append(out, destination{fmt.Sprintf("spec.http[%d].route[%d].destination", i, j), rd.GetDestination()})
		}
	}
	return out
}

// mirrorDestinations are the http routes' mirror and mirrors.
func mirrorDestinations(vs *networkingv1alpha3.VirtualService) []destination {
	var out []destination
	for i, r := range vs.GetHttp() {
		if m := r.GetMirror(); m != nil {
			out = append(out, destination{fmt.Sprintf("spec.http[%d].mirror", i), m})
		}
		for j, m := range r.GetMirrors() {
			out = append(out, destination{fmt.Sprintf("spec.http[%d].mirrors[%d].destination", i, j), m.GetDestination()})
		}
	}
	return out
}

func virtualService(o *config.Object) *networkingv1alpha3.VirtualService {
	vs, _ := o.Spec.(*networkingv1alpha3.VirtualService)
	return vs
}

func (a *analyzer) virtualServices() {
	subsets := a.destinationRuleSubsets()
	for _, o := range a.kind(config.KindVirtualService) {
		vs := virtualService(o)
		if vs == nil {
			continue
		}
		a.destinationHosts(o, vs)
		a.destinationSubsets(o, vs, subsets)
		a.ingressSubsets(o, vs)
		a.vsGateways(o, vs)
		a.jwtClaimRoutes(o, vs)
		a.unreachableRules(o, vs) // routes.go
		for i, r := range vs.GetHttp() {
			if r.GetFault().GetDelay().GetPercent() > 0 { //nolint:staticcheck // SA1019: reporting the deprecated field is the point
				a.reportf(o, "IST0002", Warning, fmt.Sprintf("spec.http[%d].fault.delay.percent", i),
					"Deprecated: %s", "HTTPRoute.fault.delay.percent is deprecated; use HTTPRoute.fault.delay.percentage")
			}
		}
	}
	a.conflictingMeshHosts()
}

// destinationHosts: IST0101 for a destination host not in the registry, IST0112 for a
// destination without port to a multi-port service, IST0101 for a port the service lacks.
func (a *analyzer) destinationHosts(o *config.Object, vs *networkingv1alpha3.VirtualService) {
	check := func(d destination, what string) {
		e := a.lookup(o.Namespace, vs.GetExportTo(), d.dest.GetHost())
		if e == nil {
			m := a.reportf(o, "IST0101", Error, d.field+".host", "Referenced %s not found: %q", what, d.dest.GetHost())
			m.Detail = fmt.Sprintf("%s is neither a ServiceEntry host nor a Kubernetes Service visible in namespace %s: requests routed here get 503 NC (cluster_not_found), "+
				"or leave the mesh under ALLOW_ANY", d.dest.GetHost(), o.Namespace)
			m.Fix = "correct the host (a short name is a Service in the VirtualService's namespace), or add the ServiceEntry or Service"
			return
		}
		if d.dest.GetPort() == nil {
			if len(e.ports) > 1 {
				var ports []int
				for _, p := range e.ports {
					ports = append(ports, int(p.number))
				}
				m := a.reportf(o, "IST0112", Error, d.field+".host",
					"This VirtualService routes to a service %q that exposes multiple ports %v. Specifying a port in the destination is required to disambiguate.", d.dest.GetHost(), ports)
				m.Fix = "set destination.port.number to one of the service's ports"
			}
			return
		}
		for _, p := range e.ports {
			if p.number == d.dest.GetPort().GetNumber() {
				return
			}
		}
		m := a.reportf(o, "IST0101", Error, d.field+".host", "Referenced %s not found: %q", "host:port", fmt.Sprintf("%s:%d", d.dest.GetHost(), d.dest.GetPort().GetNumber()))
		m.Fix = "route to one of the service's ports"
	}
	for _, d := range routeDestinations(vs) {
		check(d, "host")
	}
	for _, d := range mirrorDestinations(vs) {
		check(d, "mirror host")
	}
}

// hostSubset is a destination rule subset as Istio's analyzer keys it.
type hostSubset struct{ ns, name, subset string }

func (a *analyzer) destinationRuleSubsets() map[hostSubset]*config.Object {
	out := map[hostSubset]*config.Object{}
	for _, o := range a.kind(config.KindDestinationRule) {
		dr, ok := o.Spec.(*networkingv1alpha3.DestinationRule)
		if !ok {
			continue
		}
		ns, name := resourceName(o.Namespace, dr.GetHost())
		for _, s := range dr.GetSubsets() {
			out[hostSubset{ns, name, s.GetName()}] = o
		}
	}
	return out
}

// destinationSubsets: IST0101 for a subset no DestinationRule defines.
func (a *analyzer) destinationSubsets(o *config.Object, vs *networkingv1alpha3.VirtualService, subsets map[hostSubset]*config.Object) {
	check := func(d destination, what string) {
		if d.dest.GetSubset() == "" {
			return
		}
		ns, name := resourceName(o.Namespace, d.dest.GetHost())
		if subsets[hostSubset{ns, name, d.dest.GetSubset()}] != nil {
			return
		}
		m := a.reportf(o, "IST0101", Error, d.field+".host", "Referenced %s not found: %q", what, d.dest.GetHost()+"+"+d.dest.GetSubset())
		m.Field = d.field + ".subset"
		var defined []string
		for hs, dr := range subsets {
			if hs.ns == ns && hs.name == name {
				defined = append(defined, hs.subset+" ("+dr.Namespace+"/"+dr.Name+")")
			}
		}
		slices.Sort(defined)
		if len(defined) == 0 {
			m.Detail = fmt.Sprintf("no DestinationRule defines subsets for %s: requests routed here get 503 NC (cluster_not_found)", d.dest.GetHost())
			m.Fix = fmt.Sprintf("add a DestinationRule for %s defining subset %s", d.dest.GetHost(), d.dest.GetSubset())
		} else {
			m.Detail = fmt.Sprintf("the DestinationRules for %s define subsets %s, not %s: requests routed here get 503 NC (cluster_not_found)",
				d.dest.GetHost(), strings.Join(defined, ", "), d.dest.GetSubset())
			m.Fix = fmt.Sprintf("add subset %s to the DestinationRule, or route to one of its subsets", d.dest.GetSubset())
		}
	}
	for _, d := range routeDestinations(vs) {
		check(d, "host+subset in destinationrule")
	}
	for _, d := range mirrorDestinations(vs) {
		check(d, "mirror+subset in destinationrule")
	}
}

// ingressSubsets is IST0140: a VirtualService bound to gateways routes to a host without
// subset, while another VirtualService for that host splits it by subset; the gateway's
// requests go to the whole service, the subsets apply only to sidecars.
func (a *analyzer) ingressSubsets(o *config.Object, vs *networkingv1alpha3.VirtualService) {
	if len(vs.GetGateways()) == 0 {
		return
	}
	for i, r := range vs.GetHttp() {
		for j, rd := range r.GetRoute() {
			host := rd.GetDestination().GetHost()
			if rd.GetDestination().GetSubset() != "" {
				continue
			}
			for _, other := range a.kind(config.KindVirtualService) {
				ovs := virtualService(other)
				if ovs == nil || !routesToOwnHostSubset(ovs, host) {
					continue
				}
				m := a.reportf(o, "IST0140", Warning, fmt.Sprintf("spec.http[%d].route[%d].destination.host", i, j),
					"Subset in virtual service %s has no effect on ingress gateway %s requests", other.Namespace+"/"+other.Name, o.Namespace+"/"+o.Name)
				m.Detail = fmt.Sprintf("requests through the gateway go to every endpoint of %s; only sidecars apply VirtualService %s/%s's subsets", host, other.Namespace, other.Name)
				m.Fix = "route the gateway's requests to the subsets too, or bind the subset routes to the gateway"
			}
		}
	}
}

// routesToOwnHostSubset reports whether vs has an http destination with a subset whose
// host is one of vs's hosts and equals host.
func routesToOwnHostSubset(vs *networkingv1alpha3.VirtualService, host string) bool {
	for _, r := range vs.GetHttp() {
		for _, rd := range r.GetRoute() {
			d := rd.GetDestination()
			if d.GetSubset() != "" && d.GetHost() == host && slices.Contains(vs.GetHosts(), d.GetHost()) {
				return true
			}
		}
	}
	return false
}

// vsGateways: IST0165 for a reference to a gateway generated from a Kubernetes Gateway,
// IST0101 for a gateway that does not exist, IST0132 when none of the VirtualService's
// hosts is served by the gateway.
func (a *analyzer) vsGateways(o *config.Object, vs *networkingv1alpha3.VirtualService) {
	for i, gw := range vs.GetGateways() {
		if gw == "mesh" {
			continue
		}
		field := fmt.Sprintf("spec.gateways[%d]", i)
		if internalGateway(gw) {
			a.reportf(o, "IST0165", Warning, field, "Gateway reference in VirtualService %s is to an implementation-generated internal Gateway: %s.", o.Namespace+"/"+o.Name, gw)
			continue
		}
		ns, name := gatewayRef(o.Namespace, gw)
		g := a.object(config.KindGateway, ns, name)
		if g == nil {
			m := a.reportf(o, "IST0101", Error, field, "Referenced %s not found: %q", "gateway", gw)
			m.Detail = fmt.Sprintf("%s names Gateway %s/%s, which does not exist: no gateway serves this VirtualService's routes", gw, ns, name)
			m.Fix = "correct the name (namespace/name, or a name in the VirtualService's namespace), or create the Gateway"
		}
		if !vsHostInGateway(g, vs.GetHosts(), o.Namespace) {
			m := a.reportf(o, "IST0132", Warning, field, "one or more host %v defined in VirtualService %s not found in Gateway %s.",
				vs.GetHosts(), o.Namespace+"/"+o.Name, ns+"/"+name)
			if g != nil {
				m.Detail = fmt.Sprintf("Gateway %s/%s serves %v; requests for this VirtualService's hosts get no route there (404 NR)", ns, name, gatewayHosts(g))
				m.Fix = "add the hosts to a server of the Gateway, or correct the VirtualService's hosts"
			}
		}
	}
}

// gatewayRef is the namespace and name of a VirtualService's gateway reference: "ns/name",
// or a name in the VirtualService's namespace.
func gatewayRef(vsNamespace, ref string) (string, string) {
	if ns, name, ok := strings.Cut(ref, "/"); ok {
		return ns, name
	}
	return vsNamespace, ref
}

// internalGateway reports a reference to a gateway Istio generates from a Kubernetes
// Gateway ("<gateway>~istio-autogenerated-k8s-gateway~<listener>").
func internalGateway(gw string) bool {
	if _, name, ok := strings.Cut(gw, "/"); ok {
		gw = name
	}
	return strings.Contains(gw, "~istio-autogenerated-k8s-gateway~")
}

func gatewayHosts(o *config.Object) []string {
	g, _ := o.Spec.(*networkingv1alpha3.Gateway)
	var hs []string
	for _, s := range g.GetServers() {
		hs = append(hs, s.GetHosts()...)
	}
	return hs
}

// vsHostInGateway is Istio's check: a server host of the gateway, as visible from the
// VirtualService's namespace ("ns/host" only from ns, "./host" from the gateway's
// namespace, "*/host" from everywhere), matches a VirtualService host.
func vsHostInGateway(g *config.Object, vsHosts []string, vsNs string) bool {
	if g == nil {
		return false
	}
	spec, _ := g.Spec.(*networkingv1alpha3.Gateway)
	var hosts []string
	for _, s := range spec.GetServers() {
		server := slices.Clone(s.GetHosts())
	rewrite:
		for i, h := range server {
			ns, name, ok := strings.Cut(h, "/")
			switch {
			case !ok:
			case ns == ".":
				server[i] = g.Namespace + "/" + name
			case ns == "*" && name == "*":
				server = []string{"*"}
				break rewrite
			case ns == "*":
				server[i] = name
			}
		}
		hosts = append(hosts, server...)
	}
	for _, gh := range hosts {
		if ns, name, ok := strings.Cut(gh, "/"); ok {
			if ns != vsNs && ns != "*" {
				continue
			}
			gh = name
		}
		for _, vh := range vsHosts {
			if hostMatches(gh, vh) {
				return true
			}
		}
	}
	return false
}

// object finds an Istio object by kind, namespace and name.
func (a *analyzer) object(kind, ns, name string) *config.Object {
	for _, o := range a.kind(kind) {
		if o.Namespace == ns && o.Name == name {
			return o
		}
	}
	return nil
}

// conflictingMeshHosts is IST0109: VirtualServices for the mesh (sidecars) that define
// the same host, visible in the same namespace; sidecars apply only one of them.
func (a *analyzer) conflictingMeshHosts() {
	byHost := map[scopedHost][]*config.Object{}
	for _, o := range a.kind(config.KindVirtualService) {
		vs := virtualService(o)
		if vs == nil || len(vs.GetGateways()) > 0 && !slices.Contains(vs.GetGateways(), "mesh") {
			continue
		}
		for _, scope := range exportScopes(vs.GetExportTo(), o.Namespace) {
			for _, h := range vs.GetHosts() {
				sh := newScopedHost(scope, o.Namespace, h)
				byHost[sh] = append(byHost[sh], o)
			}
		}
	}
	reported := map[*config.Object]bool{}
	for _, sh := range slices.Sorted(maps.Keys(byHost)) {
		list := byHost[sh]
		scope, h := sh.split()
		if scope != "*" {
			for _, osh := range slices.Sorted(maps.Keys(byHost)) {
				oscope, oh := osh.split()
				if oscope == "*" && hostMatches(h, oh) {
					list = append(list, byHost[osh]...)
				}
			}
		}
		if len(list) < 2 {
			continue
		}
		var names []string
		for _, o := range list {
			names = append(names, o.Namespace+"/"+o.Name)
		}
		slices.Sort(names)
		for _, o := range list {
			if reported[o] {
				continue
			}
			reported[o] = true
			m := a.reportf(o, "IST0109", Error, "metadata.name",
				"The VirtualServices %s associated with mesh gateway define the same host %s which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource.",
				strings.Join(names, ","), string(sh))
			if win := a.m.VirtualServiceFor(o.Namespace, h); win != nil {
				m.Detail = fmt.Sprintf("sidecars in %s apply VirtualService %s/%s for %s (the first created); the routes of the others never apply", o.Namespace, win.Config.Namespace, win.Config.Name, h)
			}
			m.Fix = "merge their http routes into one VirtualService, or use delegation"
		}
	}
}

// jwtClaimRoutes is IST0149: routing on a JWT claim at a gateway whose pods no
// RequestAuthentication covers (the claims are never available there).
func (a *analyzer) jwtClaimRoutes(o *config.Object, vs *networkingv1alpha3.VirtualService) {
	key := jwtClaimKey(vs)
	if key == "" {
		return
	}
	for _, gw := range vs.GetGateways() {
		if gw == "mesh" {
			continue
		}
		ns, name := gatewayRef(o.Namespace, gw)
		g := a.object(config.KindGateway, ns, name)
		if g == nil {
			continue
		}
		spec, _ := g.Spec.(*networkingv1alpha3.Gateway)
		for _, p := range a.pods {
			if !selects(spec.GetSelector(), p.labels) || a.requestAuthnCovers(p) {
				continue
			}
			a.reportf(o, "IST0149", Error, "",
				"The virtual service uses the JWT claim based routing (key: %s) but found no request authentication for the gateway (%s) pod (%s). The request authentication must first be applied for the gateway pods to validate the JWT token and make the claims available for routing.",
				key, ns+"/"+name, p.name)
		}
	}
}

// requestAuthnCovers reports whether a RequestAuthentication in istio-system or the pod's
// namespace selects the pod.
func (a *analyzer) requestAuthnCovers(p *pod) bool {
	for _, o := range a.kind(config.KindRequestAuthentication) {
		ra, ok := o.Spec.(*securityv1beta1.RequestAuthentication)
		if !ok || o.Namespace != "istio-system" && o.Namespace != p.ns {
			continue
		}
		if selects(ra.GetSelector().GetMatchLabels(), p.labels) {
			return true
		}
	}
	return false
}

// jwtClaimKey is the first header match (or withoutHeaders) on a JWT claim.
func jwtClaimKey(vs *networkingv1alpha3.VirtualService) string {
	for _, r := range vs.GetHttp() {
		for _, m := range r.GetMatch() {
			for _, hs := range []map[string]*networkingv1alpha3.StringMatch{m.GetHeaders(), m.GetWithoutHeaders()} {
				for _, k := range slices.Sorted(maps.Keys(hs)) {
					if config.JWTClaimHeader(k) {
						return k
					}
				}
			}
		}
	}
	return ""
}
