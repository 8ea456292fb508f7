package analyze

import (
	"fmt"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// DefaultIngress describes Istio's default ingress gateway, which istioctl analyze assumes
// offline (its analyzers would otherwise find no workload for Gateways selecting
// istio=ingressgateway).
type DefaultIngress struct {
	Namespace string            // istio-system
	Pod       string            // <ingressService>-dummypod
	Service   string            // meshConfig.ingressService, default istio-ingressgateway
	Labels    map[string]string // istio=ingressgateway
	Ports     []int32           // the Service's ports: 80, 443, 31400, 15443
}

func (d *DefaultIngress) String() string {
	return fmt.Sprintf("no ingress gateway in the files: assuming Istio's default, as istioctl analyze does "+
		"(Pod %s/%s labelled %s, Service %s/%s ports %v)", d.Namespace, d.Pod, selectorString(d.Labels), d.Namespace, d.Service, d.Ports)
}

// defaultIngressPorts are the default Service's ports (name, port = target port).
var defaultIngressPorts = []struct {
	name string
	port int32
}{{"http2", 80}, {"https", 443}, {"tcp", 31400}, {"tls", 15443}}

// assumeDefaultIngress adds Istio's default ingress gateway pod and Service, as istioctl
// analyze does offline, unless the mesh config turns ingress off or the files define the
// ingress gateway: its Service (istio-system/<ingressService>) or, in Lucid's local mode, a
// WorkloadEntry labelled istio=ingressgateway. (Pods labelled istio=ingressgateway do not
// count, as in istioctl: the default gateway's Service would still select them.)
func (a *analyzer) assumeDefaultIngress() *DefaultIngress {
	if a.mesh.GetIngressControllerMode() == meshv1alpha1.MeshConfig_OFF {
		return nil
	}
	d := &DefaultIngress{Namespace: "istio-system", Service: a.mesh.GetIngressService(), Labels: map[string]string{"istio": "ingressgateway"}}
	if d.Service == "" {
		d.Service = "istio-ingressgateway"
	}
	d.Pod = d.Service + "-dummypod"
	for _, w := range a.workloads() {
		if w.kind == config.KindWorkloadEntry && selects(d.Labels, w.labels) {
			return nil
		}
	}
	for _, s := range a.services {
		if s.ns == d.Namespace && s.name == d.Service {
			return nil
		}
	}
	a.pods = append(a.pods, &pod{
		obj:  &config.Object{Kind: config.KindPod, APIVersion: "v1", Name: d.Pod, Namespace: d.Namespace, Labels: d.Labels},
		name: d.Pod, ns: d.Namespace, labels: d.Labels,
		spec: &corev1.PodSpec{Containers: []corev1.Container{{Name: "istio-proxy"}}},
	})
	svc := &service{obj: &config.Object{Kind: config.KindService, APIVersion: "v1", Name: d.Service, Namespace: d.Namespace},
		name: d.Service, ns: d.Namespace, typ: corev1.ServiceTypeClusterIP, selector: d.Labels}
	for _, p := range defaultIngressPorts {
		svc.ports = append(svc.ports, servicePort{name: p.name, port: p.port, protocol: corev1.ProtocolTCP, targetPort: intstr.FromInt32(p.port)})
		d.Ports = append(d.Ports, p.port)
	}
	a.services = append(a.services, svc)
	return d
}

// selectedByGateway reports whether a Gateway's selector selects workloads with labels.
func (a *analyzer) selectedByGateway(labels map[string]string) bool {
	for _, o := range a.kind(config.KindGateway) {
		if g := gatewaySpec(o); g != nil && selects(g.GetSelector(), labels) {
			return true
		}
	}
	return false
}
