package model

import (
	"cmp"
	"net/netip"
	"slices"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
)

// Kinds of the objects source/kube makes from Kubernetes resources. They carry istio.io/api
// specs the model already understands, so one model serves both sources:
//
//   - KindKubernetesService: a Service as a *ServiceEntry (host <name>.<ns>.svc.cluster.local,
//     workloadSelector = the Service's selector, endpoints = its ready EndpointSlice
//     addresses with their pods' labels, ports by service port name);
//   - KindPod: a pod as a *WorkloadEntry (address = pod IP).
//
// Messages about them name "Service ns/name" and "Pod ns/name".
const (
	KindKubernetesService = "Service"
	KindPod               = "Pod"
)

// isKubernetes reports whether s comes from a Kubernetes Service: its endpoints are the
// EndpointSlices' (inline), while its selector still picks the workloads it serves inbound.
func (s *Service) isKubernetes() bool {
	return s.Config != nil && s.Config.Kind == KindKubernetesService
}

// kubeEndpoints are a Kubernetes service's endpoints per service port: every inline endpoint
// whose slice carries the port (by service port name), named after the pod at its address.
func (b *builder) kubeEndpoints(s *Service) map[uint32][]*Endpoint {
	se := s.Config.Spec.(*networkingv1alpha3.ServiceEntry)
	byPort := map[uint32][]*Endpoint{}
	for _, p := range s.Ports {
		var eps []*Endpoint
		for _, we := range se.GetEndpoints() {
			port, ok := we.GetPorts()[p.Name]
			if !ok {
				continue
			}
			ep := &Endpoint{
				Address: we.GetAddress(), Port: port, Labels: we.GetLabels(), Weight: we.GetWeight(),
				Locality: we.GetLocality(), ServiceAccount: we.GetServiceAccount(), Namespace: s.Namespace,
			}
			if a, err := netip.ParseAddr(ep.Address); err == nil {
				if w := b.m.workloadByIP[a.Unmap()]; w != nil && w.Config.Kind == KindPod && w.Namespace == s.Namespace {
					ep.Workload = w.Name
				}
			}
			eps = append(eps, ep)
		}
		slices.SortStableFunc(eps, func(a, b *Endpoint) int {
			return cmp.Or(cmp.Compare(a.Address, b.Address), cmp.Compare(a.Port, b.Port))
		})
		byPort[p.Number] = eps
	}
	return byPort
}
