package kube

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// ExportToAnnotation on a Service is Istio's exportTo for it (comma-separated).
const ExportToAnnotation = "networking.istio.io/exportTo"

// LocalAddressAnnotation on a Pod is the loopback address its workload uses in local mode
// (Lucid's sidecars and apps on one machine, reading a real cluster's configuration): the
// pod's endpoints and its workload take it in place of the pod IP. Kubernetes refuses
// loopback addresses in EndpointSlices, so without it such a mesh could not be tested.
const LocalAddressAnnotation = "lucid.dev/local-address"

// localAddress is p's LocalAddressAnnotation when it is an IP address, else ip.
func localAddress(p *corev1.Pod, ip string) string {
	if a, err := netip.ParseAddr(p.Annotations[LocalAddressAnnotation]); err == nil {
		return a.Unmap().String()
	}
	return ip
}

// registry is one consistent view of the Kubernetes objects the model needs.
type registry struct {
	services []*corev1.Service
	slices   []*discoveryv1.EndpointSlice
	pods     []*corev1.Pod

	conv *converted // the last build's conversions (converted.go); nil converts everything
	// podsAsBefore says no Pod, Service or Namespace changed since the build conv holds:
	// its pods' index and objects stand (pods must then be that build's list).
	podsAsBefore bool
}

// podKey is a pod's namespace and name.
type podKey struct{ namespace, name string }

// objects turns the registry into the model's objects: one ServiceEntry-shaped object of
// Kind "Service" per Kubernetes Service (host <name>.<ns>.svc.cluster.local, its ports with
// Istio's protocols, its selector, and one endpoint per ready EndpointSlice address with the
// pod's labels and service account) and one WorkloadEntry-shaped object of Kind "Pod" per
// pod with an IP (how a sidecar finds its own labels, and what ServiceEntry workload
// selectors select, as in Istio).
func (r *registry) objects() ([]*config.Object, []config.Diagnostic) {
	conv := r.conv
	if conv == nil {
		conv = &converted{}
	}
	reuse := r.podsAsBefore && conv.podIndex != nil
	pods := conv.podIndex
	if !reuse {
		pods = make(map[podKey]*corev1.Pod, len(r.pods))
		for _, p := range r.pods {
			pods[podKey{p.Namespace, p.Name}] = p
		}
	}
	bySvc := map[string][]*discoveryv1.EndpointSlice{}
	for _, s := range r.slices {
		if svc := s.Labels[discoveryv1.LabelServiceName]; svc != "" {
			bySvc[s.Namespace+"/"+svc] = append(bySvc[s.Namespace+"/"+svc], s)
		}
	}
	for _, eps := range bySvc { // informers list in no order; conversions compare inputs in name order
		slices.SortFunc(eps, func(a, b *discoveryv1.EndpointSlice) int { return cmp.Compare(a.Name, b.Name) })
	}
	nextSvc := make(map[types.UID]convertedObject, len(r.services))
	defer func() { conv.services = nextSvc }()
	var objs []*config.Object
	var diags []config.Diagnostic
	for _, svc := range r.services {
		if svc.Spec.Type == corev1.ServiceTypeExternalName {
			diags = append(diags, config.Diagnostic{Level: config.Info, Kind: model.KindKubernetesService,
				Namespace: svc.Namespace, Name: svc.Name, Field: "spec.type",
				Message: "ExternalName services are not served by Lucid yet"})
			continue
		}
		objs = append(objs, conv.service(svc, bySvc[svc.Namespace+"/"+svc.Name], pods, nextSvc))
	}
	if !reuse {
		nextPod := make(map[types.UID]convertedObject, len(r.pods))
		nsServices := namespaceServices(r.services)
		conv.podObjs = conv.podObjs[:0:0]
		for _, p := range r.pods {
			if o := conv.pod(p, r.services, nsServices[p.Namespace], nextPod); o != nil {
				conv.podObjs = append(conv.podObjs, o)
			}
		}
		conv.pods, conv.podIndex = nextPod, pods
	}
	objs = append(objs, conv.podObjs...)
	return objs, diags
}

// serviceObject converts one Service and its EndpointSlices.
func serviceObject(svc *corev1.Service, eps []*discoveryv1.EndpointSlice, pods map[podKey]*corev1.Pod) *config.Object {
	se := &networkingv1alpha3.ServiceEntry{
		Hosts:      []string{svc.Name + "." + svc.Namespace + ".svc." + model.DomainSuffix},
		Location:   networkingv1alpha3.ServiceEntry_MESH_INTERNAL,
		Resolution: networkingv1alpha3.ServiceEntry_STATIC,
	}
	se.Addresses = append(se.Addresses, clusterIPs(svc)...)
	if len(se.Addresses) == 0 && svc.Spec.ClusterIP == corev1.ClusterIPNone {
		se.Resolution = networkingv1alpha3.ServiceEntry_NONE // headless
	}
	for _, p := range svc.Spec.Ports {
		sp := &networkingv1alpha3.ServicePort{
			Number: uint32(p.Port),
			Name:   p.Name, Protocol: Protocol(p.Port, p.Name, p.Protocol, p.AppProtocol),
		}
		if p.TargetPort.Type == intstr.Int && p.TargetPort.IntVal > 0 {
			sp.TargetPort = uint32(p.TargetPort.IntVal)
		}
		se.Ports = append(se.Ports, sp)
	}
	if len(svc.Spec.Selector) > 0 {
		se.WorkloadSelector = &networkingv1alpha3.WorkloadSelector{Labels: maps.Clone(svc.Spec.Selector)}
	}
	if v := svc.Annotations[ExportToAnnotation]; v != "" {
		for _, e := range strings.Split(v, ",") {
			if e = strings.TrimSpace(e); e != "" {
				se.ExportTo = append(se.ExportTo, e)
			}
		}
	}
	se.Endpoints = endpoints(svc, eps, pods)
	o := &config.Object{
		Kind: model.KindKubernetesService, APIVersion: "v1", Name: svc.Name, Namespace: svc.Namespace,
		Labels: svc.Labels, Annotations: svc.Annotations, Spec: se,
	}
	o.Generation = contentHash(o)
	o.CacheKey()
	return o
}

func clusterIPs(svc *corev1.Service) []string {
	ips := svc.Spec.ClusterIPs
	if len(ips) == 0 && svc.Spec.ClusterIP != "" {
		ips = []string{svc.Spec.ClusterIP}
	}
	var out []string
	for _, ip := range ips {
		if ip != "" && ip != corev1.ClusterIPNone {
			out = append(out, ip)
		}
	}
	return out
}

// endpoints are the ready addresses of the service's EndpointSlices (all of them with
// publishNotReadyAddresses), each with its slice's port numbers by service port name and
// its pod's labels and service account. An address in two slices is taken once.
func endpoints(svc *corev1.Service, eps []*discoveryv1.EndpointSlice, pods map[podKey]*corev1.Pod) []*networkingv1alpha3.WorkloadEntry {
	eps = slices.Clone(eps)
	slices.SortFunc(eps, func(a, b *discoveryv1.EndpointSlice) int { return cmp.Compare(a.Name, b.Name) })
	seen := map[string]bool{}
	var out []*networkingv1alpha3.WorkloadEntry
	for _, s := range eps {
		if s.AddressType == discoveryv1.AddressTypeFQDN {
			continue
		}
		ports := map[string]uint32{}
		for _, p := range s.Ports {
			if p.Port == nil || (p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP && *p.Protocol != corev1.ProtocolUDP) {
				continue
			}
			name := ""
			if p.Name != nil {
				name = *p.Name
			}
			ports[name] = uint32(*p.Port)
		}
		for _, e := range s.Endpoints {
			if len(e.Addresses) == 0 {
				continue
			}
			// Ready unset means ready (the API's contract for consumers).
			if e.Conditions.Ready != nil && !*e.Conditions.Ready && !svc.Spec.PublishNotReadyAddresses {
				continue
			}
			we := &networkingv1alpha3.WorkloadEntry{Address: e.Addresses[0], Ports: ports}
			if ref := e.TargetRef; ref != nil && ref.Kind == "Pod" {
				ns := ref.Namespace
				if ns == "" {
					ns = s.Namespace
				}
				if p := pods[podKey{ns, ref.Name}]; p != nil {
					we.Labels = p.Labels
					we.ServiceAccount = serviceAccount(p)
					we.Address = localAddress(p, we.Address)
				}
			}
			if seen[we.Address] {
				continue
			}
			seen[we.Address] = true
			out = append(out, we)
		}
	}
	slices.SortFunc(out, func(a, b *networkingv1alpha3.WorkloadEntry) int { return cmp.Compare(a.Address, b.Address) })
	return out
}

func serviceAccount(p *corev1.Pod) string {
	if p.Spec.ServiceAccountName != "" {
		return p.Spec.ServiceAccountName
	}
	return "default"
}

// podObject is a pod as a workload, or nil for a pod without an IP of its own (not yet
// scheduled, finished, or on the host network).
func podObject(p *corev1.Pod, services []*corev1.Service) *config.Object {
	if p.Status.PodIP == "" || p.Spec.HostNetwork ||
		p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return nil
	}
	we := &networkingv1alpha3.WorkloadEntry{
		Address: localAddress(p, p.Status.PodIP), Labels: p.Labels, ServiceAccount: serviceAccount(p),
		Ports: namedTargetPorts(p, services),
	}
	o := &config.Object{
		Kind: model.KindPod, APIVersion: "v1", Name: p.Name, Namespace: p.Namespace,
		Labels: p.Labels, Annotations: p.Annotations, Spec: we,
	}
	o.Generation = contentHash(o)
	o.CacheKey()
	return o
}

// namedTargetPorts resolves, for the services selecting p, every service port whose
// targetPort is a container port name: service port name → p's port number. The model
// reads a workload's ports this way (WorkloadEntry.ports).
func namedTargetPorts(p *corev1.Pod, services []*corev1.Service) map[string]uint32 {
	byName := map[string]int32{}
	for _, c := range p.Spec.Containers {
		for _, cp := range c.Ports {
			if cp.Name != "" {
				byName[cp.Name] = cp.ContainerPort
			}
		}
	}
	if len(byName) == 0 {
		return nil
	}
	var out map[string]uint32
	for _, svc := range services {
		if svc.Namespace != p.Namespace || len(svc.Spec.Selector) == 0 || !selects(svc.Spec.Selector, p.Labels) {
			continue
		}
		for _, sp := range svc.Spec.Ports {
			if sp.TargetPort.Type != intstr.String || sp.Name == "" {
				continue
			}
			if n, ok := byName[sp.TargetPort.StrVal]; ok {
				if out == nil {
					out = map[string]uint32{}
				}
				out[sp.Name] = uint32(n)
			}
		}
	}
	return out
}

func selects(selector, labels map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// contentHash is the Generation of a converted object: equal hashes mean equal content.
func contentHash(o *config.Object) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00", o.Kind, o.Namespace, o.Name)
	for _, m := range []map[string]string{o.Labels, o.Annotations} {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			fmt.Fprintf(h, "%s=%s\x00", k, m[k])
		}
		h.Write([]byte{1})
	}
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(o.Spec)
	h.Write(b)
	return "kube:" + hex.EncodeToString(h.Sum(nil))[:16]
}
