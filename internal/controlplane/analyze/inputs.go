package analyze

import (
	"maps"
	"slices"
	"strings"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// ignoredNamespaces are the namespaces Istio's analyzers never see (Istio's injector
// ignores them, and istioctl analyze filters their objects out).
var ignoredNamespaces = map[string]bool{"kube-system": true, "kube-public": true, "kube-node-lease": true, "local-path-storage": true}

// pod is a Kubernetes pod as the analyzers read it: from the files (spec known) or from
// the running control plane's registry (labels only).
type pod struct {
	obj         *config.Object
	name, ns    string
	labels      map[string]string
	annotations map[string]string
	spec        *corev1.PodSpec // nil when only the labels are known
}

// service is a Kubernetes Service as the analyzers read it.
type service struct {
	obj         *config.Object
	name, ns    string
	typ         corev1.ServiceType
	ports       []servicePort
	selector    map[string]string
	labels      map[string]string
	annotations map[string]string
}

type servicePort struct {
	name        string
	port        int32
	protocol    corev1.Protocol // TCP, UDP, SCTP
	appProtocol *string
	targetPort  intstr.IntOrString
}

func newAnalyzer(objs []*config.Object, mesh *meshv1alpha1.MeshConfig) *analyzer {
	a := &analyzer{mesh: mesh, kinds: map[string][]*config.Object{}, namespaces: map[string]*config.Object{},
		nodes: map[string]map[string]string{}, secrets: map[string]*config.Object{}}
	var valid []*config.Object
	for _, o := range objs {
		if o.Kind == config.KindNamespace && ignoredNamespaces[o.Name] || ignoredNamespaces[o.Namespace] {
			continue
		}
		switch k := o.Kube.(type) {
		case *corev1.Pod:
			a.pods = append(a.pods, &pod{obj: o, name: o.Name, ns: o.Namespace, labels: k.Labels, annotations: k.Annotations, spec: &k.Spec})
			continue
		case *corev1.Service:
			a.services = append(a.services, kubeService(o, k))
			continue
		case *corev1.Namespace:
			a.namespaces[o.Name] = o
			continue
		case *corev1.Node:
			a.nodes[o.Name] = k.Labels
			continue
		case *corev1.Secret:
			a.secrets[o.Namespace+"/"+o.Name] = o
			continue
		}
		switch o.Kind {
		case model.KindPod: // the control plane's registry: a pod as a WorkloadEntry
			a.pods = append(a.pods, &pod{obj: o, name: o.Name, ns: o.Namespace, labels: o.Labels, annotations: o.Annotations})
		case model.KindKubernetesService:
			if se, ok := o.Spec.(*networkingv1alpha3.ServiceEntry); ok {
				a.services = append(a.services, registryService(o, se))
			}
		default:
			a.objs = append(a.objs, o)
			a.kinds[o.Kind] = append(a.kinds[o.Kind], o)
		}
		if !o.Invalid && o.Spec != nil {
			valid = append(valid, o)
		}
	}
	var diags []config.Diagnostic
	a.m, diags = model.Build(valid, mesh)
	a.modelDiags = diags
	return a
}

func kubeService(o *config.Object, k *corev1.Service) *service {
	s := &service{obj: o, name: o.Name, ns: o.Namespace, typ: k.Spec.Type, selector: k.Spec.Selector,
		labels: k.Labels, annotations: k.Annotations}
	for _, p := range k.Spec.Ports {
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP // the API server's default
		}
		tp := p.TargetPort
		if tp.Type == intstr.Int && tp.IntVal == 0 || tp.Type == intstr.String && tp.StrVal == "" {
			tp = intstr.FromInt32(p.Port) // the API server's default
		}
		s.ports = append(s.ports, servicePort{name: p.Name, port: p.Port, protocol: proto, appProtocol: p.AppProtocol, targetPort: tp})
	}
	return s
}

// registryService reads a Service the running control plane holds as a ServiceEntry
// (source/kube): ports keep their numbers, names and target ports.
func registryService(o *config.Object, se *networkingv1alpha3.ServiceEntry) *service {
	s := &service{obj: o, name: o.Name, ns: o.Namespace, typ: corev1.ServiceTypeClusterIP,
		selector: se.GetWorkloadSelector().GetLabels(), labels: o.Labels, annotations: o.Annotations}
	for _, p := range se.GetPorts() {
		sp := servicePort{name: p.GetName(), port: int32(p.GetNumber()), protocol: corev1.ProtocolTCP}
		if strings.EqualFold(p.GetProtocol(), "UDP") {
			sp.protocol = corev1.ProtocolUDP
		}
		sp.targetPort = intstr.FromInt32(int32(cmpOr(p.GetTargetPort(), p.GetNumber())))
		s.ports = append(s.ports, sp)
	}
	return s
}

func cmpOr(a, b uint32) uint32 {
	if a != 0 {
		return a
	}
	return b
}

// workload is what a selector can select: a pod, or a WorkloadEntry (Lucid's local mode
// runs its workloads and gateways as WorkloadEntries).
type workload struct {
	obj    *config.Object
	kind   string
	ns     string
	labels map[string]string
}

// workloads are the pods and the WorkloadEntries (computed once the inputs are complete,
// Istio's default ingress gateway included).
func (a *analyzer) workloads() []workload {
	if a.workloadList != nil && len(a.podOf) == len(a.pods) {
		return a.workloadList
	}
	out := []workload{}
	a.podOf = map[*config.Object]*pod{}
	for _, p := range a.pods {
		out = append(out, workload{obj: p.obj, kind: p.obj.Kind, ns: p.ns, labels: p.labels})
		a.podOf[p.obj] = p
	}
	for _, o := range a.kind(config.KindWorkloadEntry) {
		if we, ok := o.Spec.(*networkingv1alpha3.WorkloadEntry); ok {
			out = append(out, workload{obj: o, kind: o.Kind, ns: o.Namespace, labels: we.GetLabels()})
		}
	}
	a.workloadList = out
	return out
}

// selects reports whether labels have every key and value of selector (a Kubernetes
// equality selector; an empty selector selects everything).
func selects(selector, labels map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// selectorString renders a selector as Kubernetes does: "k=v,k2=v2", sorted.
func selectorString(sel map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(sel)) {
		parts = append(parts, k+"="+sel[k])
	}
	return strings.Join(parts, ",")
}

// labelList renders labels for people: "app=reviews, version=v1", or "(none)".
func labelList(l map[string]string) string {
	if len(l) == 0 {
		return "(none)"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(l)) {
		parts = append(parts, k+"="+l[k])
	}
	return strings.Join(parts, ", ")
}
