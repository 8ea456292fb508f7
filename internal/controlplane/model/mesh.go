package model

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"time"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	securityv1beta1 "istio.io/api/security/v1beta1"
	corev1 "k8s.io/api/core/v1"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// Istio's defaults for the MeshConfig fields Lucid uses.
const (
	DefaultConnectTimeout = 10 * time.Second
	DefaultRootNamespace  = "istio-system"
)

// Mesh is the whole mesh model. It is immutable once built.
type Mesh struct {
	services      []*Service // sorted by host
	serviceByHost map[string]*Service
	endpoints     map[string]map[uint32][]*Endpoint // host → service port → endpoints, sorted

	workloads      []*Workload // sorted by namespace/name
	workloadByName map[string]*Workload
	workloadByIP   map[netip.Addr]*Workload

	virtualServices []*VirtualService // non-delegate, in Istio's order (creation order; here name.namespace)
	gateways        []*Gateway        // creation order (gateway.go)
	gatewayByKey    map[string]*Gateway
	destRules       map[string][]*DestinationRule

	allowAny       bool
	retryPolicy    *networkingv1alpha3.HTTPRetry
	connectTimeout time.Duration
	rootNamespace  string
	tcpKeepalive   *networkingv1alpha3.ConnectionPoolSettings_TCPSettings_TcpKeepalive // meshConfig.tcpKeepalive

	sidecars    map[string][]*config.Object // Sidecar resources by namespace, by name
	selectors   []map[string]string         // label selectors that decide what a proxy gets (change.go)
	fingerprint string                      // everything but endpoints and workloads (change.go)
	workloadGen map[string]string           // "ns/name" → generation of each workload's object

	scopeMu  sync.Mutex // guards scopes, built on first use (sidecar.go)
	scopes   map[scopeKey]*SidecarScope
	security *security // AuthorizationPolicy, RequestAuthentication (security.go)
	tracing  *traces   // the mesh config's and Telemetry resources' tracing (tracing.go)

	// Telemetry resources' accessLogging and metrics (telemetry_accesslog.go,
	// telemetry_metrics.go)
	accessLogs *accessLogging
	metrics    *metricsTelemetry

	// peerauth.go: PeerAuthentications, enableAutoMtls, and whether workloads have certificates
	peerAuthns         []*PeerAuthn
	autoMTLS, identity bool

	credentials map[string]*Credential // "ns/name" → a Gateway credential's Secret (credential.go)
}

// Build builds the mesh from validated objects. mesh may be nil (Istio defaults). The
// diagnostics are warnings about config Istio accepts but that will misbehave at run time.
func Build(objs []*config.Object, mesh *meshv1alpha1.MeshConfig) (*Mesh, []config.Diagnostic) {
	b := &builder{m: &Mesh{
		serviceByHost:  map[string]*Service{},
		endpoints:      map[string]map[uint32][]*Endpoint{},
		workloadByName: map[string]*Workload{},
		workloadByIP:   map[netip.Addr]*Workload{},
		destRules:      map[string][]*DestinationRule{},
		gatewayByKey:   map[string]*Gateway{},
		sidecars:       map[string][]*config.Object{},
		allowAny:       true,
		connectTimeout: DefaultConnectTimeout,
		rootNamespace:  DefaultRootNamespace,
	}}
	if mesh != nil {
		if p := mesh.GetOutboundTrafficPolicy(); p != nil {
			b.m.allowAny = p.GetMode() != meshv1alpha1.MeshConfig_OutboundTrafficPolicy_REGISTRY_ONLY
		}
		if d := mesh.GetConnectTimeout(); d != nil && d.AsDuration() > 0 {
			b.m.connectTimeout = d.AsDuration()
		}
		b.m.retryPolicy = mesh.GetDefaultHttpRetryPolicy()
		b.m.tcpKeepalive = mesh.GetTcpKeepalive()
		if ns := mesh.GetRootNamespace(); ns != "" {
			b.m.rootNamespace = ns
		}
	}
	b.m.autoMTLS = mesh.GetEnableAutoMtls() == nil || mesh.GetEnableAutoMtls().GetValue() // peerauth.go
	sorted := slices.Clone(objs)
	// Istio orders by creation time, then name and namespace; objects from files have no
	// creation time, so name.namespace is the order.
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name+"."+a.Namespace, b.Name+"."+b.Namespace)) < 0
	})
	var ses, ves, drs []*config.Object
	for _, o := range sorted {
		if s, ok := o.Kube.(*corev1.Secret); ok && o.Kind == config.KindSecret {
			b.addCredential(o, s) // credential.go
			continue
		}
		switch spec := o.Spec.(type) {
		case *networkingv1alpha3.WorkloadEntry:
			b.addWorkload(o)
		case *networkingv1alpha3.ServiceEntry:
			ses = append(ses, o)
		case *networkingv1alpha3.VirtualService:
			ves = append(ves, o)
		case *networkingv1alpha3.DestinationRule:
			drs = append(drs, o)
		case *networkingv1alpha3.Gateway:
			b.addGateway(o)
		case *securityv1beta1.PeerAuthentication: // peerauth.go
			b.m.peerAuthns = append(b.m.peerAuthns, &PeerAuthn{Name: o.Name, Namespace: o.Namespace, Spec: spec})
		case *networkingv1alpha3.Sidecar:
			b.m.sidecars[o.Namespace] = append(b.m.sidecars[o.Namespace], o)
			if sel := spec.GetWorkloadSelector(); sel != nil {
				b.addSelector(sel.GetLabels())
			}
		}
	}
	for _, list := range b.m.sidecars {
		slices.SortFunc(list, func(a, b *config.Object) int { return cmp.Compare(a.Name, b.Name) })
	}
	b.m.security = newSecurity(sorted, mesh) // security.go
	for _, o := range ses {
		b.addServiceEntry(o)
	}
	slices.SortFunc(b.m.services, func(a, b *Service) int { return cmp.Compare(a.Host, b.Host) })
	b.buildEndpoints()
	for _, o := range drs {
		b.addDestinationRule(o)
	}
	b.buildVirtualServices(ves)
	b.checkDestinationRules()
	b.checkVirtualServices()
	b.checkGateways()
	b.checkTracing(sorted, mesh) // tracing.go
	// telemetry_accesslog.go, telemetry_metrics.go
	b.checkAccessLogging(sorted, mesh)
	b.checkMetrics(sorted, mesh)
	b.fingerprint(objs, mesh)
	return b.m, b.diags
}

type builder struct {
	m     *Mesh
	diags []config.Diagnostic
}

func (b *builder) warn(o *config.Object, field, format string, args ...any) {
	b.diags = append(b.diags, config.Diagnostic{
		Level: config.Warning, File: o.File, Line: o.Line, Kind: o.Kind,
		Namespace: o.Namespace, Name: o.Name, Field: field, Message: fmt.Sprintf(format, args...),
	})
}

// Services returns every service, sorted by host.
func (m *Mesh) Services() []*Service { return m.services }

// Service returns the service for host, or nil.
func (m *Mesh) Service(host string) *Service { return m.serviceByHost[host] }

// VisibleServices returns the services a sidecar in namespace ns sees (exportTo), sorted by host.
func (m *Mesh) VisibleServices(ns string) []*Service {
	out := make([]*Service, 0, len(m.services))
	for _, s := range m.services {
		if exported(s.ExportTo, s.Namespace, ns) {
			out = append(out, s)
		}
	}
	return out
}

// Endpoints returns the endpoints of host's service port, sorted by address and port.
func (m *Mesh) Endpoints(host string, port uint32) []*Endpoint { return m.endpoints[host][port] }

// Workloads returns every WorkloadEntry, sorted by namespace and name.
func (m *Mesh) Workloads() []*Workload { return m.workloads }

// OutboundAllowAny reports whether outboundTrafficPolicy is ALLOW_ANY (else REGISTRY_ONLY).
func (m *Mesh) OutboundAllowAny() bool { return m.allowAny }

// ConnectTimeout is meshConfig.connectTimeout (default 10 s).
func (m *Mesh) ConnectTimeout() time.Duration { return m.connectTimeout }

// DefaultHTTPRetryPolicy is meshConfig.defaultHttpRetryPolicy: the retries of routes
// that set none (nil: Istio's built-in default).
func (m *Mesh) DefaultHTTPRetryPolicy() *networkingv1alpha3.HTTPRetry { return m.retryPolicy }

// RootNamespace is meshConfig.rootNamespace (default istio-system).
func (m *Mesh) RootNamespace() string { return m.rootNamespace }

// InboundPorts returns the ports w serves: the target ports of every service port whose
// service selects w, sorted by port, the first service (by host) winning a shared port.
func (m *Mesh) InboundPorts(w *Workload) []InboundPort {
	if w == nil {
		return nil
	}
	seen := map[uint32]bool{}
	var out []InboundPort
	for _, s := range m.services {
		if s.Selector == nil || s.Namespace != w.Namespace || !selects(s.Selector, w.Labels) {
			continue
		}
		for _, p := range s.Ports {
			tp := targetPort(p, w.Ports)
			if seen[tp] {
				continue
			}
			seen[tp] = true
			out = append(out, InboundPort{Port: tp, AppPort: tp, Protocol: p.Protocol, Service: s, Name: p.Name})
		}
	}
	slices.SortFunc(out, func(a, b InboundPort) int { return cmp.Compare(a.Port, b.Port) })
	return out
}

// ProxyInboundPorts are the ports proxy p serves inbound: its Sidecar's ingress listeners
// when it has any, else the ports of the services that select its workload.
func (m *Mesh) ProxyInboundPorts(p *Proxy) []InboundPort {
	w := m.Workload(p)
	if p.Type == ProxySidecar {
		if sc := m.SidecarScope(p); len(sc.Ingress()) > 0 {
			return sc.IngressPorts(m, w)
		}
	}
	return m.InboundPorts(w)
}

// targetPort is Istio's endpoint port: the workload's port named like the service port,
// else the service port's targetPort, else its number.
func targetPort(p Port, ports map[string]uint32) uint32 {
	if n, ok := ports[p.Name]; ok && n != 0 && p.Name != "" {
		return n
	}
	if p.TargetPort != 0 {
		return p.TargetPort
	}
	return p.Number
}

// TCPKeepalive is meshConfig.tcpKeepalive (nil when unset): the mesh-wide upstream TCP
// keepalive that a DestinationRule's connectionPool.tcp.tcpKeepalive overrides per field.
func (m *Mesh) TCPKeepalive() *networkingv1alpha3.ConnectionPoolSettings_TCPSettings_TcpKeepalive {
	return m.tcpKeepalive
}
