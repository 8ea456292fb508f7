package model

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"maps"
	"slices"
	"strings"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// Change is how a mesh differs from the one built before it, in the terms the push needs:
// a configuration change (anything a proxy's listeners, routes or clusters could depend
// on) makes every proxy's configuration be generated again; without one, only the endpoint
// assignments of EndpointHosts change for everybody (an EDS-only push), and the proxies of
// Workloads get their own resources generated again (their labels, ports or address).
type Change struct {
	Config        bool
	EndpointHosts map[string]bool // service hosts whose endpoints changed
	Workloads     map[string]bool // "namespace/name" of workloads that changed, appeared or left
}

// Full is the Change of a first mesh, or of any configuration change.
var Full = Change{Config: true}

// Diff tells what changed from prev to next. A nil prev is a Full change.
func Diff(prev, next *Mesh) Change {
	if prev == nil || prev.fingerprint != next.fingerprint {
		return Full
	}
	ch := Change{EndpointHosts: map[string]bool{}, Workloads: map[string]bool{}}
	for k, g := range next.workloadGen {
		if prev.workloadGen[k] != g {
			ch.Workloads[k] = true
		}
	}
	for k := range prev.workloadGen {
		if _, ok := next.workloadGen[k]; !ok {
			ch.Workloads[k] = true
		}
	}
	for host, byPort := range next.endpoints {
		if !sameEndpoints(prev.endpoints[host], byPort) {
			ch.EndpointHosts[host] = true
		}
	}
	for host := range prev.endpoints {
		if _, ok := next.endpoints[host]; !ok {
			ch.EndpointHosts[host] = true
		}
	}
	return ch
}

// Empty reports whether nothing a proxy sees changed.
func (c Change) Empty() bool {
	return !c.Config && len(c.EndpointHosts) == 0 && len(c.Workloads) == 0
}

func sameEndpoints(a, b map[uint32][]*Endpoint) bool {
	if len(a) != len(b) {
		return false
	}
	for port, ea := range a {
		eb, ok := b[port]
		if !ok || len(ea) != len(eb) {
			return false
		}
		for i := range ea {
			x, y := ea[i], eb[i]
			if x.Address != y.Address || x.Port != y.Port || x.Weight != y.Weight || x.Locality != y.Locality ||
				x.ServiceAccount != y.ServiceAccount || x.Workload != y.Workload || x.Namespace != y.Namespace ||
				!maps.Equal(x.Labels, y.Labels) {
				return false
			}
		}
	}
	return true
}

// fingerprint hashes everything proxies' configuration depends on except endpoints and
// workloads: every object's identity and generation, a ServiceEntry's (or a Kubernetes
// Service's) spec without its endpoints, and the mesh config. WorkloadEntries and Pods
// are recorded per workload in workloadGen instead.
func (b *builder) fingerprint(objs []*config.Object, mesh *meshv1alpha1.MeshConfig) {
	sorted := slices.Clone(objs)
	slices.SortFunc(sorted, func(a, b *config.Object) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	h := sha256.New()
	det := proto.MarshalOptions{Deterministic: true}
	b.m.workloadGen = make(map[string]string)
	for _, o := range sorted {
		switch spec := o.Spec.(type) {
		case *networkingv1alpha3.WorkloadEntry:
			b.m.workloadGen[o.Namespace+"/"+o.Name] = o.Kind + ":" + generation(o, det)
			continue
		case *networkingv1alpha3.ServiceEntry:
			if len(spec.GetEndpoints()) > 0 {
				bare := withoutEndpoints(spec)
				fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00", o.Kind, o.Namespace, o.Name, contentHash(bare, det))
				writeMeta(h, o)
				continue
			}
		}
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00", o.Kind, o.Namespace, o.Name, generation(o, det))
		writeMeta(h, o)
	}
	if mesh != nil {
		fmt.Fprintf(h, "mesh\x00%s", contentHash(mesh, det))
	}
	b.m.fingerprint = hex.EncodeToString(h.Sum(nil))
}

// writeMeta adds what of an object's metadata the model reads (labels, annotations).
func writeMeta(h hash.Hash, o *config.Object) {
	for _, m := range []map[string]string{o.Labels, o.Annotations} {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			fmt.Fprintf(h, "%s=%s\x00", k, m[k])
		}
		h.Write([]byte{1})
	}
}

// generation is the object's Generation, or a hash of its spec when it has none.
func generation(o *config.Object, det proto.MarshalOptions) string {
	if o.Generation != "" {
		return o.Generation
	}
	return contentHash(o.Spec, det)
}

func contentHash(m proto.Message, det proto.MarshalOptions) string {
	if m == nil {
		return ""
	}
	b, err := det.Marshal(m)
	if err != nil {
		return "unhashable"
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

// WorkloadIdentity names the workload a proxy runs for and its generation ("" when none):
// a proxy's own resources (inbound listeners and clusters) are a function of it and of the
// configuration.
func (m *Mesh) WorkloadIdentity(p *Proxy) string {
	w := m.Workload(p)
	if w == nil {
		return ""
	}
	k := w.Namespace + "/" + w.Name
	return k + "@" + m.workloadGen[k]
}

// ProxyClass names the group of proxies that get the same outbound configuration from
// this mesh: a sidecar's outbound listeners, routes, clusters and endpoints depend only on
// its namespace, its Sidecar scope, and which label selectors of the configuration
// (DestinationRule and Sidecar workload selectors, VirtualService sourceLabels) match it.
// A gateway is a class of its own, per version of its workload (its labels select its
// Gateways).
func (m *Mesh) ProxyClass(p *Proxy) string {
	if p.Type != ProxySidecar {
		return p.Type + "|" + p.ID + "|" + m.WorkloadIdentity(p)
	}
	var b strings.Builder
	b.WriteString(p.Namespace)
	b.WriteByte('|')
	b.WriteString(m.SidecarScope(p).Key())
	b.WriteByte('|')
	for i, sel := range m.selectors {
		if selects(sel, p.Labels) {
			fmt.Fprint(&b, i)
			b.WriteByte(',')
		}
	}
	return b.String()
}

// addSelector records a label selector the configuration applies to proxies.
func (b *builder) addSelector(sel map[string]string) {
	if len(sel) == 0 {
		return
	}
	for _, s := range b.m.selectors {
		if maps.Equal(s, sel) {
			return
		}
	}
	b.m.selectors = append(b.m.selectors, sel)
}

// EndpointsOnly tells the store whether an object's change (old → cur, either nil when the
// object appeared or went away) touches only endpoints: a workload (WorkloadEntry or Pod,
// whose own proxy is regenerated, everybody else gets endpoints), or a ServiceEntry or
// Kubernetes Service whose spec and metadata differ only in endpoints.
func EndpointsOnly(old, cur *config.Object) bool {
	o := cmp.Or(old, cur)
	if o == nil {
		return true
	}
	switch o.Spec.(type) {
	case *networkingv1alpha3.WorkloadEntry:
		return true
	case *networkingv1alpha3.ServiceEntry:
		if old == nil || cur == nil || old.Kind != cur.Kind {
			return false
		}
		a, _ := old.Spec.(*networkingv1alpha3.ServiceEntry)
		b, _ := cur.Spec.(*networkingv1alpha3.ServiceEntry)
		if a == nil || b == nil || !maps.Equal(old.Labels, cur.Labels) || !maps.Equal(old.Annotations, cur.Annotations) {
			return false
		}
		a, b = proto.CloneOf(a), proto.CloneOf(b)
		a.Endpoints, b.Endpoints = nil, nil
		return proto.Equal(a, b)
	}
	return false
}

// SameService reports whether two meshes' services for one host are alike in everything
// a service's clusters are built from (so the earlier mesh's clusters can be reused).
func SameService(a, b *Service) bool {
	return a.Host == b.Host && a.Namespace == b.Namespace && a.Resolution == b.Resolution && a.External == b.External &&
		slices.Equal(a.Addresses, b.Addresses) && slices.Equal(a.Ports, b.Ports) && slices.Equal(a.ExportTo, b.ExportTo) &&
		maps.Equal(a.Selector, b.Selector) && (a.Selector == nil) == (b.Selector == nil) &&
		(a.Config == nil) == (b.Config == nil) && (a.Config == nil || a.Config.Kind == b.Config.Kind)
}

// SameEndpointList reports whether two lists of a service port's endpoints are alike.
func SameEndpointList(a, b []*Endpoint) bool {
	return sameEndpoints(map[uint32][]*Endpoint{0: a}, map[uint32][]*Endpoint{0: b})
}

// SameSettings reports whether two meshes' mesh-wide cluster settings (connect timeout,
// TCP keepalive) are the same.
func SameSettings(a, b *Mesh) bool {
	return a.connectTimeout == b.connectTimeout && proto.Equal(a.tcpKeepalive, b.tcpKeepalive)
}

// Identity names a DestinationRule's content: every object merged into it with its
// generation ("" for none), so equal identities mean equal rules.
func (d *DestinationRule) Identity() string {
	if d == nil {
		return ""
	}
	var b strings.Builder
	for _, o := range d.Merged {
		fmt.Fprintf(&b, "%s@%s;", o.Key(), o.Generation)
	}
	return b.String()
}

// withoutEndpoints is se without its endpoints, for hashing: every other field is shared
// with se, not copied (a deep copy of every Service per build was most of the
// fingerprint's cost), so the result must only be read.
func withoutEndpoints(se *networkingv1alpha3.ServiceEntry) *networkingv1alpha3.ServiceEntry {
	bare := &networkingv1alpha3.ServiceEntry{}
	dst := bare.ProtoReflect()
	se.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Name() != "endpoints" {
			dst.Set(fd, v)
		}
		return true
	})
	return bare
}
