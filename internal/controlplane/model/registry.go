package model

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

func (b *builder) addWorkload(o *config.Object) {
	we := o.Spec.(*networkingv1alpha3.WorkloadEntry)
	w := &Workload{
		Name: o.Name, Namespace: o.Namespace, Labels: we.GetLabels(), Ports: we.GetPorts(),
		ServiceAccount: we.GetServiceAccount(), Locality: we.GetLocality(), Weight: we.GetWeight(),
		AppAddress: netip.AddrFrom4([4]byte{127, 0, 0, 1}), Config: o,
	}
	if a, err := netip.ParseAddr(we.GetAddress()); err == nil {
		w.Address = a.Unmap()
	}
	if s := o.Annotations[AppAddressAnnotation]; s != "" {
		if a, err := netip.ParseAddr(s); err == nil {
			w.AppAddress = a.Unmap()
		} else {
			b.warn(o, "metadata.annotations["+AppAddressAnnotation+"]", "not an IP address: %q; using 127.0.0.1", s)
		}
	}
	b.m.workloads = append(b.m.workloads, w)
	b.m.workloadByName[o.Namespace+"/"+o.Name] = w
	if w.Address.IsValid() {
		if prev := b.m.workloadByIP[w.Address]; prev != nil {
			b.warn(o, "spec.address", "address %s is also used by WorkloadEntry %s/%s", w.Address, prev.Namespace, prev.Name)
		} else {
			b.m.workloadByIP[w.Address] = w
		}
	}
}

func (b *builder) addServiceEntry(o *config.Object) {
	se := o.Spec.(*networkingv1alpha3.ServiceEntry)
	ports := make([]Port, 0, len(se.GetPorts()))
	for _, p := range se.GetPorts() {
		ports = append(ports, Port{Name: p.GetName(), Number: p.GetNumber(), Protocol: strings.ToUpper(p.GetProtocol()), TargetPort: p.GetTargetPort()})
	}
	slices.SortStableFunc(ports, func(a, b Port) int { return cmp.Compare(a.Number, b.Number) })
	var selector map[string]string
	if ws := se.GetWorkloadSelector(); ws != nil {
		selector = maps.Clone(ws.GetLabels())
		if selector == nil {
			selector = map[string]string{}
		}
	}
	for i, h := range se.GetHosts() {
		host := ResolveHost(h, o.Namespace)
		if prev := b.m.serviceByHost[host]; prev != nil {
			b.warn(o, fmt.Sprintf("spec.hosts[%d]", i), "host %s is already defined by ServiceEntry %s/%s; this one is ignored", host, prev.Config.Namespace, prev.Config.Name)
			continue
		}
		s := &Service{
			Host: host, Namespace: o.Namespace, Addresses: se.GetAddresses(), Ports: ports,
			Resolution: se.GetResolution().String(),
			External:   se.GetLocation() == networkingv1alpha3.ServiceEntry_MESH_EXTERNAL,
			ExportTo:   se.GetExportTo(), Selector: selector, Config: o,
		}
		b.m.services = append(b.m.services, s)
		b.m.serviceByHost[host] = s
	}
}

// workloadIndex finds the workloads a selector selects without scanning every workload:
// by namespace, then by one of the selector's labels.
type workloadIndex map[string]map[string][]*Workload // namespace → "k=v" → workloads

func newWorkloadIndex(ws []*Workload) workloadIndex {
	idx := workloadIndex{}
	for _, w := range ws {
		byLabel := idx[w.Namespace]
		if byLabel == nil {
			byLabel = map[string][]*Workload{}
			idx[w.Namespace] = byLabel
		}
		byLabel[""] = append(byLabel[""], w) // every workload of the namespace
		for k, v := range w.Labels {
			byLabel[k+"="+v] = append(byLabel[k+"="+v], w)
		}
	}
	return idx
}

// selected returns the workloads of ns whose labels carry every selector label, in the
// order of the workload list.
func (idx workloadIndex) selected(ns string, selector map[string]string) []*Workload {
	byLabel := idx[ns]
	candidates := byLabel[""]
	for k, v := range selector {
		if c := byLabel[k+"="+v]; len(c) < len(candidates) {
			candidates = c
		}
	}
	var out []*Workload
	for _, w := range candidates {
		if selects(selector, w.Labels) {
			out = append(out, w)
		}
	}
	return out
}

func (b *builder) buildEndpoints() {
	idx := newWorkloadIndex(b.m.workloads)
	for _, s := range b.m.services {
		if s.isKubernetes() { // endpoints from EndpointSlices: kube.go
			b.m.endpoints[s.Host] = b.kubeEndpoints(s)
			continue
		}
		se := s.Config.Spec.(*networkingv1alpha3.ServiceEntry)
		byPort := map[uint32][]*Endpoint{}
		for _, p := range s.Ports {
			var eps []*Endpoint
			if s.Selector != nil {
				for _, w := range idx.selected(s.Namespace, s.Selector) {
					addr := w.Config.Spec.(*networkingv1alpha3.WorkloadEntry).GetAddress()
					eps = append(eps, &Endpoint{
						Address: addr, Port: targetPort(p, w.Ports), Labels: w.Labels, Weight: w.Weight,
						Locality: w.Locality, ServiceAccount: w.ServiceAccount, Workload: w.Name, Namespace: w.Namespace,
					})
				}
			} else {
				for _, we := range se.GetEndpoints() {
					eps = append(eps, &Endpoint{
						Address: we.GetAddress(), Port: targetPort(p, we.GetPorts()), Labels: we.GetLabels(),
						Weight: we.GetWeight(), Locality: we.GetLocality(), ServiceAccount: we.GetServiceAccount(),
						Namespace: s.Namespace,
					})
				}
			}
			slices.SortStableFunc(eps, func(a, b *Endpoint) int {
				return cmp.Or(cmp.Compare(a.Address, b.Address), cmp.Compare(a.Port, b.Port))
			})
			byPort[p.Number] = eps
		}
		b.m.endpoints[s.Host] = byPort
	}
}

// labelString renders labels as "k=v,k=v" sorted, or "(none)".
func labelString(l map[string]string) string {
	if len(l) == 0 {
		return "(none)"
	}
	keys := slices.Sorted(maps.Keys(l))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + l[k]
	}
	return strings.Join(parts, ",")
}
