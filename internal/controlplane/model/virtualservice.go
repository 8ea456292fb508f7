package model

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// GatewayMesh is the reserved gateway name meaning every sidecar.
const GatewayMesh = "mesh"

// VirtualService is a root VirtualService with its delegates merged in.
type VirtualService struct {
	Hosts    []string // resolved
	Gateways []string // resolved ("mesh", "ns/name"); ["mesh"] when unset
	ExportTo []string
	HTTP     []HTTPRoute
	Config   *config.Object
}

// HTTPRoute is one http route of a VirtualService, after delegation.
type HTTPRoute struct {
	Route  *networkingv1alpha3.HTTPRoute
	Source *config.Object // the VirtualService that wrote it (the delegate for delegated routes)
	Field  string         // its field path in Source, e.g. "spec.http[2]"
}

// ConfigPath is the "istio" metadata config reference of a VirtualService.
func ConfigPath(o *config.Object) string {
	return "/apis/networking.istio.io/v1/namespaces/" + o.Namespace + "/virtual-service/" + o.Name
}

// ForSidecars reports whether the VirtualService applies to sidecars (gateways has "mesh").
func (v *VirtualService) ForSidecars() bool { return slices.Contains(v.Gateways, GatewayMesh) }

func resolveGateways(gws []string, ns string) []string {
	if len(gws) == 0 {
		return []string{GatewayMesh}
	}
	out := make([]string, len(gws))
	for i, g := range gws {
		out[i] = ResolveGatewayName(g, ns) // gateway_bind.go
	}
	return out
}

func (b *builder) buildVirtualServices(objs []*config.Object) {
	delegates := map[string]*config.Object{}
	for _, o := range objs {
		if len(o.Spec.(*networkingv1alpha3.VirtualService).GetHosts()) == 0 {
			delegates[o.Namespace+"/"+o.Name] = o
		}
	}
	for _, o := range objs {
		spec := o.Spec.(*networkingv1alpha3.VirtualService)
		if len(spec.GetHosts()) == 0 {
			continue
		}
		v := &VirtualService{Gateways: resolveGateways(spec.GetGateways(), o.Namespace), ExportTo: spec.GetExportTo(), Config: o}
		for _, h := range spec.GetHosts() {
			v.Hosts = append(v.Hosts, ResolveHost(h, o.Namespace))
		}
		for i, r := range spec.GetHttp() {
			field := fmt.Sprintf("spec.http[%d]", i)
			if r.GetDelegate() == nil {
				v.HTTP = append(v.HTTP, HTTPRoute{Route: r, Source: o, Field: field})
				continue
			}
			dns := cmp.Or(r.GetDelegate().GetNamespace(), o.Namespace)
			d := delegates[dns+"/"+r.GetDelegate().GetName()]
			if d == nil {
				b.warn(o, field+".delegate", "delegate VirtualService %s/%s not found (a delegate has no hosts); the route is dropped", dns, r.GetDelegate().GetName())
				continue
			}
			dspec := d.Spec.(*networkingv1alpha3.VirtualService)
			if !exported(dspec.GetExportTo(), d.Namespace, o.Namespace) {
				b.warn(o, field+".delegate", "delegate VirtualService %s/%s is not exported to namespace %s; the route is dropped", dns, d.Name, o.Namespace)
				continue
			}
			for j, dr := range dspec.GetHttp() {
				if dr.GetDelegate() != nil {
					b.warn(d, fmt.Sprintf("spec.http[%d].delegate", j), "a delegate VirtualService cannot delegate again; the route is dropped")
					continue
				}
				if merged := mergeDelegateRoute(r, dr); merged != nil {
					v.HTTP = append(v.HTTP, HTTPRoute{Route: merged, Source: d, Field: fmt.Sprintf("spec.http[%d]", j)})
				}
			}
		}
		b.m.virtualServices = append(b.m.virtualServices, v)
		for _, r := range v.HTTP {
			for _, mr := range r.Route.GetMatch() {
				b.addSelector(mr.GetSourceLabels())
			}
		}
		for _, r := range spec.GetTcp() {
			for _, mr := range r.GetMatch() {
				b.addSelector(mr.GetSourceLabels())
			}
		}
		for _, r := range spec.GetTls() {
			for _, mr := range r.GetMatch() {
				b.addSelector(mr.GetSourceLabels())
			}
		}
	}
}

// mergeDelegateRoute merges a root route's matches into a delegate's route as Istio does:
// each root match combines with each delegate match; combinations that conflict are
// dropped, and a route left with no match at all is dropped. nil means dropped.
func mergeDelegateRoute(root, del *networkingv1alpha3.HTTPRoute) *networkingv1alpha3.HTTPRoute {
	out := shallowRoute(del)
	if root.GetName() != "" && del.GetName() != "" {
		out.Name = root.GetName() + "-" + del.GetName()
	} else if del.GetName() == "" {
		out.Name = root.GetName()
	}
	switch {
	case len(root.GetMatch()) == 0:
		return out
	case len(del.GetMatch()) == 0:
		out.Match = root.GetMatch()
		return out
	}
	out.Match = nil
	for _, rm := range root.GetMatch() {
		for _, dm := range del.GetMatch() {
			if m := mergeMatch(rm, dm); m != nil {
				out.Match = append(out.Match, m)
			}
		}
	}
	if len(out.Match) == 0 {
		return nil
	}
	return out
}

func shallowRoute(r *networkingv1alpha3.HTTPRoute) *networkingv1alpha3.HTTPRoute {
	return &networkingv1alpha3.HTTPRoute{
		Name: r.Name, Match: r.Match, Route: r.Route, Redirect: r.Redirect, DirectResponse: r.DirectResponse,
		Rewrite: r.Rewrite, Timeout: r.Timeout, Retries: r.Retries, Fault: r.Fault, Mirror: r.Mirror,
		Mirrors: r.Mirrors, MirrorPercent: r.MirrorPercent, MirrorPercentage: r.MirrorPercentage, //nolint:staticcheck // SA1019: Istio still honours mirrorPercent
		CorsPolicy: r.CorsPolicy, Headers: r.Headers,
	}
}

func mergeMatch(root, del *networkingv1alpha3.HTTPMatchRequest) *networkingv1alpha3.HTTPMatchRequest {
	out := &networkingv1alpha3.HTTPMatchRequest{
		Name: del.Name, Uri: del.Uri, Scheme: del.Scheme, Method: del.Method, Authority: del.Authority,
		Headers: del.Headers, Port: del.Port, SourceLabels: del.SourceLabels, Gateways: del.Gateways,
		QueryParams: del.QueryParams, IgnoreUriCase: del.IgnoreUriCase || root.IgnoreUriCase,
		WithoutHeaders: del.WithoutHeaders, SourceNamespace: del.SourceNamespace, StatPrefix: del.StatPrefix,
	}
	if root.Name != "" && del.Name != "" {
		out.Name = root.Name + "-" + del.Name
	} else if del.Name == "" {
		out.Name = root.Name
	}
	if root.Uri != nil {
		if del.Uri == nil {
			out.Uri = root.Uri
		} else if !uriWithin(root.Uri, del.Uri) {
			return nil
		}
	}
	for _, f := range []struct {
		r, d, o **networkingv1alpha3.StringMatch
	}{
		{&root.Scheme, &del.Scheme, &out.Scheme}, {&root.Method, &del.Method, &out.Method}, {&root.Authority, &del.Authority, &out.Authority},
	} {
		if *f.r == nil {
			continue
		}
		if *f.d == nil {
			*f.o = *f.r
		} else if !sameStringMatch(*f.r, *f.d) {
			return nil
		}
	}
	var ok bool
	if out.Headers, ok = mergeStringMatches(root.Headers, del.Headers); !ok {
		return nil
	}
	if out.QueryParams, ok = mergeStringMatches(root.QueryParams, del.QueryParams); !ok {
		return nil
	}
	if out.WithoutHeaders, ok = mergeStringMatches(root.WithoutHeaders, del.WithoutHeaders); !ok {
		return nil
	}
	if root.Port != 0 {
		if del.Port == 0 {
			out.Port = root.Port
		} else if del.Port != root.Port {
			return nil
		}
	}
	if len(root.SourceLabels) > 0 {
		out.SourceLabels = maps.Clone(root.SourceLabels)
		for k, v := range del.SourceLabels {
			if rv, ok := out.SourceLabels[k]; ok && rv != v {
				return nil
			}
			out.SourceLabels[k] = v
		}
	}
	if root.SourceNamespace != "" {
		if del.SourceNamespace == "" {
			out.SourceNamespace = root.SourceNamespace
		} else if del.SourceNamespace != root.SourceNamespace {
			return nil
		}
	}
	if len(del.Gateways) == 0 {
		out.Gateways = root.Gateways
	}
	return out
}

// uriWithin reports whether the delegate's uri match narrows the root's (prefix only, as Istio).
func uriWithin(root, del *networkingv1alpha3.StringMatch) bool {
	rp, ok := root.MatchType.(*networkingv1alpha3.StringMatch_Prefix)
	if !ok {
		return sameStringMatch(root, del)
	}
	switch d := del.MatchType.(type) {
	case *networkingv1alpha3.StringMatch_Prefix:
		return strings.HasPrefix(d.Prefix, rp.Prefix)
	case *networkingv1alpha3.StringMatch_Exact:
		return strings.HasPrefix(d.Exact, rp.Prefix)
	}
	return false
}

func sameStringMatch(a, b *networkingv1alpha3.StringMatch) bool {
	switch x := a.MatchType.(type) {
	case *networkingv1alpha3.StringMatch_Exact:
		y, ok := b.MatchType.(*networkingv1alpha3.StringMatch_Exact)
		return ok && x.Exact == y.Exact
	case *networkingv1alpha3.StringMatch_Prefix:
		y, ok := b.MatchType.(*networkingv1alpha3.StringMatch_Prefix)
		return ok && x.Prefix == y.Prefix
	case *networkingv1alpha3.StringMatch_Regex:
		y, ok := b.MatchType.(*networkingv1alpha3.StringMatch_Regex)
		return ok && x.Regex == y.Regex
	}
	return b.MatchType == nil
}

func mergeStringMatches(root, del map[string]*networkingv1alpha3.StringMatch) (map[string]*networkingv1alpha3.StringMatch, bool) {
	if len(root) == 0 {
		return del, true
	}
	out := maps.Clone(root)
	for k, v := range del {
		if rv, ok := out[k]; ok && !sameStringMatch(rv, v) {
			return nil, false
		}
		out[k] = v
	}
	return out, true
}

// VirtualServiceFor returns the VirtualService that routes host for sidecars in namespace
// ns: among those exported to ns whose gateways include "mesh", one naming the exact host
// wins over wildcards (the most specific wildcard next); ties go to the first by creation
// order, as Istio keeps the first virtual host for a domain. nil when none.
func (m *Mesh) VirtualServiceFor(ns, host string) *VirtualService {
	return bestVirtualService(m.meshVirtualServices(ns), host)
}

// bestVirtualService is the VirtualService of vses (in creation order) that routes host:
// an exact host over wildcards, the most specific wildcard next, the first on a tie.
func bestVirtualService(vses []*VirtualService, host string) *VirtualService {
	var best *VirtualService
	bestSpec := -1
	for _, v := range vses {
		for _, h := range v.Hosts {
			if HostMatches(h, host) && specificity(h) > bestSpec {
				best, bestSpec = v, specificity(h)
			}
		}
	}
	return best
}

// VirtualServices returns every root VirtualService in creation order.
func (m *Mesh) VirtualServices() []*VirtualService { return m.virtualServices }

// MatchApplies reports whether an http match applies to a sidecar proxy, as Istio decides
// it: a match that lists gateways applies when they include "mesh" (sourceLabels and
// sourceNamespace are then not consulted); otherwise its sourceLabels must all be on the
// proxy and its sourceNamespace, if set, must be the proxy's namespace.
func MatchApplies(mr *networkingv1alpha3.HTTPMatchRequest, p *Proxy) bool {
	if mr == nil {
		return true
	}
	if gws := mr.GetGateways(); len(gws) > 0 {
		return slices.Contains(gws, GatewayMesh)
	}
	if !selects(mr.GetSourceLabels(), p.Labels) {
		return false
	}
	return mr.GetSourceNamespace() == "" || mr.GetSourceNamespace() == p.Namespace
}

// checkVirtualServices warns about destinations Istio accepts but that fail at request time.
func (b *builder) checkVirtualServices() {
	for _, v := range b.m.virtualServices {
		for _, r := range v.HTTP {
			ns := r.Source.Namespace
			for j, d := range r.Route.GetRoute() {
				b.checkDestination(r.Source, ns, fmt.Sprintf("%s.route[%d].destination", r.Field, j), d.GetDestination())
			}
			if r.Route.GetMirror() != nil {
				b.checkDestination(r.Source, ns, r.Field+".mirror", r.Route.GetMirror())
			}
			for j, mp := range r.Route.GetMirrors() {
				b.checkDestination(r.Source, ns, fmt.Sprintf("%s.mirrors[%d].destination", r.Field, j), mp.GetDestination())
			}
		}
	}
}

func (b *builder) checkDestination(o *config.Object, ns, field string, d *networkingv1alpha3.Destination) {
	if d == nil {
		return
	}
	host := ResolveHost(d.GetHost(), ns)
	svc := b.m.serviceByHost[host]
	if svc == nil {
		hint := ""
		if alt := host + ".svc." + DomainSuffix; b.m.serviceByHost[alt] != nil {
			hint = fmt.Sprintf(" (did you mean %s?)", alt)
		}
		b.warn(o, field+".host", "host %s is not in the service registry%s; requests get 503 NC (cluster_not_found) or follow outboundTrafficPolicy", host, hint)
		return
	}
	if n := d.GetPort().GetNumber(); n != 0 {
		if _, ok := svc.Port(n); !ok {
			b.warn(o, field+".port.number", "service %s has no port %d; requests get 503 NC (cluster_not_found)", host, n)
		}
	}
	if d.GetSubset() == "" {
		return
	}
	if dr := b.m.DestinationRule(ns, nil, host); dr.Subset(d.GetSubset()) == nil {
		by := "no DestinationRule applies to the host"
		if dr != nil {
			by = fmt.Sprintf("DestinationRule %s/%s does not define it", dr.Config.Namespace, dr.Config.Name)
		}
		b.warn(o, field+".subset", "subset %q of %s is not defined (%s); requests get 503 NC (cluster_not_found, IST0101)", d.GetSubset(), host, by)
	}
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

func joinUnique(ss []string) string {
	slices.Sort(ss)
	return strings.Join(slices.Compact(ss), "; ")
}
