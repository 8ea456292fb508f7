package model

import (
	"slices"
	"strings"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
)

// Binding VirtualServices to gateways, as Istio does:
//   - spec.gateways names gateways as "ns/name", "./name" or "name" (the VirtualService's
//     namespace), or the legacy "name.ns[.svc.cluster.local]"; "mesh" means every sidecar;
//     no gateways at all means ["mesh"];
//   - a VirtualService applies to sidecars only when its gateways include "mesh", and to
//     a gateway only when they name it (VirtualService.ForSidecars, ForGateway);
//   - a rule's match.gateways, when set, restricts the match the same way.

// ResolveGatewayName turns a gateway reference written in a VirtualService of namespace
// ns into "namespace/name" ("mesh" is kept).
func ResolveGatewayName(g, ns string) string {
	if g == GatewayMesh {
		return g
	}
	if gns, name, ok := strings.Cut(g, "/"); ok {
		if gns == "." {
			return ns + "/" + name
		}
		return g
	}
	name, rest, ok := strings.Cut(g, ".")
	if !ok {
		return ns + "/" + g
	}
	gns, _, _ := strings.Cut(rest, ".")
	return gns + "/" + name
}

// ForGateway reports whether v is bound to gateway gw ("namespace/name").
func (v *VirtualService) ForGateway(gw string) bool { return slices.Contains(v.Gateways, gw) }

// VirtualServicesForGateway returns the VirtualServices bound to gateway gw that a router
// in namespace ns sees, in Istio's order: those private to ns (exportTo "."), then those
// exported to ns by name, then the public ones; each group in creation order.
func (m *Mesh) VirtualServicesForGateway(ns, gw string) []*VirtualService {
	var private, named, public []*VirtualService
	for _, v := range m.virtualServices {
		if !v.ForGateway(gw) {
			continue
		}
		switch vsVisibility(v, ns) {
		case visPrivate:
			private = append(private, v)
		case visNamed:
			named = append(named, v)
		case visPublic:
			public = append(public, v)
		}
	}
	return slices.Concat(private, named, public)
}

type visibility int

const (
	visNone visibility = iota
	visPrivate
	visNamed
	visPublic
)

func vsVisibility(v *VirtualService, ns string) visibility {
	if len(v.ExportTo) == 0 || slices.Contains(v.ExportTo, "*") {
		return visPublic
	}
	own := v.Config.Namespace
	if ns == own && (slices.Contains(v.ExportTo, ".") || slices.Contains(v.ExportTo, own)) {
		return visPrivate
	}
	if slices.Contains(v.ExportTo, ns) {
		return visNamed
	}
	return visNone
}

// VirtualServiceHosts returns the hosts under which server s serves v (Istio's host
// intersection): for each server host open to v's namespace and each host of v, the
// narrower of the two when one covers the other; in server host order, without repeats.
func (s *GatewayServer) VirtualServiceHosts(v *VirtualService) []string {
	var out []string
	add := func(h string) {
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	for _, sh := range s.Hosts {
		if sh.Namespace != "" && sh.Namespace != v.Config.Namespace {
			continue
		}
		for _, vh := range v.Hosts {
			vh = strings.ToLower(vh)
			switch {
			case HostMatches(vh, sh.Host):
				add(sh.Host)
			case HostMatches(sh.Host, vh):
				add(vh)
			}
		}
	}
	return out
}

// GatewayMatchApplies reports whether an http match of a VirtualService of namespace ns
// applies on gateway gw for router p, as Istio decides it: a match that lists gateways
// applies when one of them is gw; otherwise its sourceLabels must be on p and its
// sourceNamespace, if set, p's namespace.
func GatewayMatchApplies(mr *networkingv1alpha3.HTTPMatchRequest, p *Proxy, gw, ns string) bool {
	if mr == nil {
		return true
	}
	if gws := mr.GetGateways(); len(gws) > 0 {
		return namesGateway(gws, gw, ns)
	}
	if !selects(mr.GetSourceLabels(), p.Labels) {
		return false
	}
	return mr.GetSourceNamespace() == "" || mr.GetSourceNamespace() == p.Namespace
}

// L4MatchApplies reports whether a tcp or tls route match (its gateways and port) applies
// to a gateway server: no gateways or one naming gw, and no port or the server's.
func L4MatchApplies(gateways []string, port uint32, gw, ns string, serverPort uint32) bool {
	if len(gateways) > 0 && !namesGateway(gateways, gw, ns) {
		return false
	}
	return port == 0 || port == serverPort
}

func namesGateway(gws []string, gw, ns string) bool {
	for _, g := range gws {
		if ResolveGatewayName(g, ns) == gw {
			return true
		}
	}
	return false
}
