package model

import (
	"cmp"
	"net"
	"slices"
	"strconv"
	"strings"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// SidecarScope is what a sidecar may see of the mesh: Istio's Sidecar resource that applies
// to it, turned into the services, VirtualServices and outbound policy its configuration
// is generated from. Without a Sidecar every service and VirtualService exported to the
// proxy's namespace is visible (Istio's default scope).
type SidecarScope struct {
	// Config is the Sidecar applied, nil for the default scope.
	Config    *config.Object
	Namespace string // the proxy's namespace ("." in egress hosts)

	egress   []*EgressListener
	services []*Service            // union over the egress listeners, sorted by host
	ports    map[*Service][]uint32 // a service visible on some ports only; absent: all ports
	allowAny bool
	ingress  []*networkingv1alpha3.IstioIngressListener
	key      string
}

// EgressListener is one egress entry of a Sidecar: the services and VirtualServices its
// hosts import, for one port (0: every port no other egress listener names).
type EgressListener struct {
	Port            uint32
	hosts           map[string][]string // namespace ("*" for any) → host patterns
	services        []*Service
	virtualServices []*VirtualService
}

// Key identifies the scope among its mesh's: proxies with the same namespace and key see
// the same.
func (s *SidecarScope) Key() string { return s.key }

// Services are the visible services, sorted by host.
func (s *SidecarScope) Services() []*Service { return s.services }

// ServicePorts are the ports of svc the scope makes visible (clusters are generated for
// them), in the service's order.
func (s *SidecarScope) ServicePorts(svc *Service) []Port {
	only, ok := s.ports[svc]
	if !ok {
		return svc.Ports
	}
	var out []Port
	for _, p := range svc.Ports {
		if slices.Contains(only, p.Number) {
			out = append(out, p)
		}
	}
	return out
}

// OutboundAllowAny is the outbound traffic policy: the Sidecar's, else the mesh's.
func (s *SidecarScope) OutboundAllowAny() bool { return s.allowAny }

// Ingress is the Sidecar's ingress listeners (nil: inbound ports come from the services
// that select the workload).
func (s *SidecarScope) Ingress() []*networkingv1alpha3.IstioIngressListener { return s.ingress }

// Listener returns the egress listener that serves outbound port: the one naming the port,
// else the catch-all; nil when none does.
func (s *SidecarScope) Listener(port uint32) *EgressListener {
	var catchAll *EgressListener
	for _, l := range s.egress {
		if l.Port == port {
			return l
		}
		if l.Port == 0 && catchAll == nil {
			catchAll = l
		}
	}
	return catchAll
}

// ServicesOn lists the services with an HTTP route or TCP listener on port: those the
// egress listener for port imports that have the port, sorted by host.
func (s *SidecarScope) ServicesOn(port uint32) []*Service {
	l := s.Listener(port)
	if l == nil {
		return nil
	}
	var out []*Service
	for _, svc := range l.services {
		if _, ok := svc.Port(port); ok {
			out = append(out, svc)
		}
	}
	return out
}

// VirtualServiceFor returns the VirtualService that routes host on port for this scope:
// Mesh.VirtualServiceFor's choice among those the port's egress listener imports.
func (s *SidecarScope) VirtualServiceFor(m *Mesh, host string, port uint32) *VirtualService {
	if s.Config == nil {
		return m.VirtualServiceFor(s.Namespace, host)
	}
	l := s.Listener(port)
	if l == nil {
		return nil
	}
	return bestVirtualService(l.virtualServices, host)
}

// SidecarScope returns the scope of proxy p, selected as Istio selects a Sidecar: one in
// p's namespace whose workloadSelector matches p's labels (the first by name when several
// do), else the one in p's namespace without a selector, else the root namespace's without
// a selector, else the default scope.
func (m *Mesh) SidecarScope(p *Proxy) *SidecarScope {
	var chosen *config.Object
	var fallback *config.Object
	if p.Type != ProxySidecar {
		return m.defaultScope(p.Namespace) // a Sidecar never applies to a gateway
	}
	for _, o := range m.sidecars[p.Namespace] {
		sc := o.Spec.(*networkingv1alpha3.Sidecar)
		if sel := sc.GetWorkloadSelector(); sel != nil {
			if chosen == nil && selects(sel.GetLabels(), p.Labels) {
				chosen = o
			}
		} else if fallback == nil {
			fallback = o
		}
	}
	if chosen == nil {
		chosen = fallback
	}
	if chosen == nil && p.Namespace != m.rootNamespace {
		for _, o := range m.sidecars[m.rootNamespace] {
			if o.Spec.(*networkingv1alpha3.Sidecar).GetWorkloadSelector() == nil {
				chosen = o
				break
			}
		}
	}
	k := scopeKey{ns: p.Namespace}
	if chosen != nil {
		k.sidecar = chosen.Namespace + "/" + chosen.Name
	}
	m.scopeMu.Lock()
	defer m.scopeMu.Unlock()
	if s := m.scopes[k]; s != nil {
		return s
	}
	s := m.buildScope(chosen, p.Namespace)
	if m.scopes == nil {
		m.scopes = map[scopeKey]*SidecarScope{}
	}
	m.scopes[k] = s
	return s
}

type scopeKey struct{ ns, sidecar string }

func (m *Mesh) defaultScope(ns string) *SidecarScope {
	k := scopeKey{ns: ns}
	m.scopeMu.Lock()
	defer m.scopeMu.Unlock()
	if s := m.scopes[k]; s != nil {
		return s
	}
	s := m.buildScope(nil, ns)
	if m.scopes == nil {
		m.scopes = map[scopeKey]*SidecarScope{}
	}
	m.scopes[k] = s
	return s
}

// buildScope converts a Sidecar (nil: the default) for proxies of namespace ns.
func (m *Mesh) buildScope(o *config.Object, ns string) *SidecarScope {
	s := &SidecarScope{Config: o, Namespace: ns, allowAny: m.allowAny, ports: map[*Service][]uint32{}, key: "default"}
	exported := m.VisibleServices(ns)
	if o == nil {
		s.services = exported
		s.egress = []*EgressListener{{hosts: map[string][]string{"*": {"*"}}, services: exported}}
		return s
	}
	sc := o.Spec.(*networkingv1alpha3.Sidecar)
	s.key = o.Namespace + "/" + o.Name + "@" + o.Generation
	s.ingress = sc.GetIngress()
	switch sc.GetOutboundTrafficPolicy().GetMode() {
	case networkingv1alpha3.OutboundTrafficPolicy_REGISTRY_ONLY:
		s.allowAny = false
	case networkingv1alpha3.OutboundTrafficPolicy_ALLOW_ANY:
		if sc.GetOutboundTrafficPolicy() != nil {
			s.allowAny = true
		}
	}
	egress := sc.GetEgress()
	if len(egress) == 0 {
		egress = []*networkingv1alpha3.IstioEgressListener{{Hosts: []string{"*/*"}}}
	}
	vses := m.meshVirtualServices(ns)
	portsAll := map[*Service]bool{}
	union := map[*Service]bool{}
	add := func(svc *Service, port uint32) {
		union[svc] = true
		if port == 0 {
			portsAll[svc] = true
		} else if !slices.Contains(s.ports[svc], port) {
			s.ports[svc] = append(s.ports[svc], port)
		}
	}
	for _, e := range egress {
		l := &EgressListener{Port: e.GetPort().GetNumber(), hosts: map[string][]string{}}
		for _, h := range e.GetHosts() {
			hns, host, ok := strings.Cut(h, "/")
			if !ok {
				continue // rejected by validation
			}
			if hns == "." {
				hns = ns
			}
			l.hosts[hns] = append(l.hosts[hns], host)
		}
		for _, svc := range exported {
			if l.imports(svc.Namespace, svc.Host) && (l.Port == 0 || hasPort(svc, l.Port)) {
				l.services = append(l.services, svc)
				add(svc, l.Port)
			}
		}
		for _, v := range vses {
			if l.importsVirtualService(v) {
				l.virtualServices = append(l.virtualServices, v)
			}
		}
		// Istio imports the services a selected VirtualService routes to (clusters only),
		// so its routes do not point at clusters the proxy lacks.
		for _, v := range l.virtualServices {
			for _, h := range v.destinationHosts() {
				svc := m.serviceByHost[h]
				if svc == nil || !exportedTo(svc, ns) || (l.Port != 0 && !hasPort(svc, l.Port)) {
					continue
				}
				add(svc, l.Port)
			}
		}
		s.egress = append(s.egress, l)
	}
	for svc := range portsAll {
		delete(s.ports, svc)
	}
	for svc := range union {
		s.services = append(s.services, svc)
	}
	slices.SortFunc(s.services, func(a, b *Service) int { return cmp.Compare(a.Host, b.Host) })
	return s
}

// imports reports whether the listener's hosts import a service or VirtualService host of
// namespace ns: the hosts listed for ns if any, else those listed for "*".
func (l *EgressListener) imports(ns, host string) bool {
	patterns, ok := l.hosts[ns]
	if !ok {
		patterns = l.hosts["*"]
	}
	for _, p := range patterns {
		if HostMatches(p, host) {
			return true
		}
	}
	return false
}

// importsVirtualService: a VirtualService is imported when one of its hosts and one of the
// listener's hosts for its namespace match either way (a wildcard on either side).
func (l *EgressListener) importsVirtualService(v *VirtualService) bool {
	patterns, ok := l.hosts[v.Config.Namespace]
	if !ok {
		patterns = l.hosts["*"]
	}
	for _, h := range v.Hosts {
		for _, p := range patterns {
			if HostMatches(p, h) || HostMatches(h, p) {
				return true
			}
		}
	}
	return false
}

func hasPort(svc *Service, port uint32) bool {
	_, ok := svc.Port(port)
	return ok
}

func exportedTo(svc *Service, ns string) bool { return svc.VisibleFrom(ns) }

// VisibleFrom reports whether the service is exported to namespace ns.
func (s *Service) VisibleFrom(ns string) bool { return exported(s.ExportTo, s.Namespace, ns) }

// meshVirtualServices are the VirtualServices sidecars of ns may use: bound to "mesh" and
// exported to ns, in creation order.
func (m *Mesh) meshVirtualServices(ns string) []*VirtualService {
	var out []*VirtualService
	for _, v := range m.virtualServices {
		if v.ForSidecars() && exported(v.ExportTo, v.Config.Namespace, ns) {
			out = append(out, v)
		}
	}
	return out
}

// destinationHosts are the hosts the VirtualService's http routes send to.
func (v *VirtualService) destinationHosts() []string {
	var out []string
	for _, r := range v.HTTP {
		for _, d := range r.Route.GetRoute() {
			h := ResolveHost(d.GetDestination().GetHost(), r.Source.Namespace)
			if !slices.Contains(out, h) {
				out = append(out, h)
			}
		}
		if m := r.Route.GetMirror(); m != nil {
			h := ResolveHost(m.GetHost(), r.Source.Namespace)
			if !slices.Contains(out, h) {
				out = append(out, h)
			}
		}
	}
	return out
}

// IngressPorts are the inbound ports a Sidecar's ingress listeners define for w: the
// listener's port, its protocol, and where the application listens (defaultEndpoint's
// port; the workload's application address stands for 127.0.0.1 and 0.0.0.0).
func (s *SidecarScope) IngressPorts(m *Mesh, w *Workload) []InboundPort {
	var out []InboundPort
	for _, in := range s.ingress {
		p := in.GetPort()
		ip := InboundPort{Port: p.GetNumber(), AppPort: p.GetNumber(), Protocol: strings.ToUpper(p.GetProtocol()), Name: p.GetName()}
		if _, port, err := net.SplitHostPort(in.GetDefaultEndpoint()); err == nil {
			if n, err := strconv.ParseUint(port, 10, 16); err == nil && n > 0 {
				ip.AppPort = uint32(n)
			}
		}
		for _, svc := range m.services {
			if svc.Selector != nil && w != nil && svc.Namespace == w.Namespace && selects(svc.Selector, w.Labels) {
				for _, sp := range svc.Ports {
					if targetPort(sp, w.Ports) == ip.Port || sp.Number == ip.Port {
						ip.Service = svc
						break
					}
				}
			}
			if ip.Service != nil {
				break
			}
		}
		out = append(out, ip)
	}
	slices.SortFunc(out, func(a, b InboundPort) int { return cmp.Compare(a.Port, b.Port) })
	return out
}
