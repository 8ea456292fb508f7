package analyze

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/lucid-mesh/lucid/internal/controlplane/source/kube"
)

// The Kubernetes object checks: Istio's PortNameAnalyzer (IST0118, IST0150), injection
// Analyzer (IST0102, IST0103, IST0123) and ApplicationUIDAnalyzer (IST0144).

// controlPlane is Istio's IsIstioControlPlane: objects labelled istio=... or release=istio.
func controlPlane(labels map[string]string) bool {
	_, ok := labels["istio"]
	return ok || labels["release"] == "istio"
}

func (a *analyzer) kubeServices() {
	for _, s := range a.services {
		if s.obj.Kube == nil || controlPlane(s.labels) {
			continue // the running registry's Services were checked when they were applied
		}
		switch s.labels["gateway.istio.io/managed"] {
		case "istio.io-gateway-controller", "istio.io-mesh-controller", "istio.io-eastwest-controller":
			continue
		}
		for i, p := range s.ports {
			unsupported := kube.Protocol(p.port, p.name, p.protocol, p.appProtocol) == ""
			external := s.typ == corev1.ServiceTypeExternalName
			if !unsupported && (p.name != "tcp" || !external) {
				continue
			}
			field := fmt.Sprintf("spec.ports[%d].port", i)
			if external {
				a.report(s.obj, "IST0150", Warning, field, "Port name for ExternalName service is invalid. Proxy may prevent tcp named ports and unmatched traffic for ports serving TCP protocol from being forwarded correctly")
				continue
			}
			m := a.reportf(s.obj, "IST0118", Info, field, "Port name %s (port: %d, targetPort: %s) doesn't follow the naming convention of Istio port.",
				p.name, p.port, targetPortString(s.obj.Kube.(*corev1.Service).Spec.Ports[i]))
			m.Detail = fmt.Sprintf("port %d's protocol is sniffed per connection (HTTP or TCP); the explicit proxy of local mode routes it as HTTP", p.port)
			m.Fix = "name the port <protocol>[-<suffix>] (http-web, grpc, tcp-db), or set appProtocol"
		}
	}
}

// targetPortString prints a target port as written ("" when unset), as Istio does.
func targetPortString(p corev1.ServicePort) string {
	if p.TargetPort.IntValue() == 0 && p.TargetPort.StrVal == "" {
		return "0"
	}
	return p.TargetPort.String()
}

// injection checks namespaces and pods for sidecar injection as Istio's injection
// analyzer does: a namespace without injection label (IST0102), several injection labels
// (IST0123), a pod of an injected namespace without istio-proxy container (IST0103); and
// pods running as the proxy's UID 1337 (IST0144).
func (a *analyzer) injection() {
	injected := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(a.namespaces)) {
		o := a.namespaces[name]
		if name == "istio-system" {
			continue
		}
		inj, hasInj := o.Labels["istio-injection"]
		_, hasRev := o.Labels["istio.io/rev"]
		var istioLabels []string
		if hasInj {
			istioLabels = append(istioLabels, "istio-injection="+inj)
		}
		for _, l := range []string{"istio.io/rev", "istio.io/dataplane-mode"} {
			if v, ok := o.Labels[l]; ok && (!hasInj || inj == "enabled") {
				istioLabels = append(istioLabels, l+"="+v)
			}
		}
		if len(istioLabels) > 1 {
			a.reportf(o, "IST0123", Warning, "", "The namespace has more than one type of injection labels %v, which may lead to undefined behavior. Make sure only one injection label exists.", istioLabels)
		}
		if o.Labels["istio.io/dataplane-mode"] == "ambient" {
			continue
		}
		if inj == "" && !hasRev {
			m := a.reportf(o, "IST0102", Info, "metadata.name", "The namespace is not enabled for Istio injection. Run 'kubectl label namespace %s istio-injection=enabled' to enable it, or 'kubectl label namespace %s istio-injection=disabled' to explicitly mark it as not needing injection.", name, name)
			m.Detail = "Lucid's injector selects namespaces as Istio's does: its pods get no sidecar"
			continue
		}
		if inj == "enabled" {
			injected[name] = true
		}
	}
	for _, p := range a.pods {
		if p.spec == nil {
			continue
		}
		a.applicationUID(p)
		if !injected[p.ns] || p.spec.HostNetwork {
			continue
		}
		inj := p.annotations["sidecar.istio.io/inject"]
		if v, ok := p.labels["sidecar.istio.io/inject"]; ok {
			inj = v
		}
		if strings.EqualFold(inj, "false") || hasProxy(p.spec) {
			continue
		}
		a.reportf(p.obj, "IST0103", Warning, "", "The pod %s is missing the Istio proxy. This can often be resolved by restarting or redeploying the workload.", p.ns+"/"+p.name)
	}
}

func hasProxy(spec *corev1.PodSpec) bool {
	for _, c := range append(slices.Clone(spec.Containers), spec.InitContainers...) {
		if c.Name == "istio-proxy" {
			return c.Image != ""
		}
	}
	return false
}

// applicationUID is IST0144: a pod or container running as UID 1337, the proxy's (its
// traffic would bypass the sidecar's redirection).
func (a *analyzer) applicationUID(p *pod) {
	if controlPlane(p.labels) {
		return
	}
	text := "User ID (UID) 1337 is reserved for the sidecar proxy."
	if sc := p.spec.SecurityContext; sc != nil && sc.RunAsUser != nil && *sc.RunAsUser == 1337 {
		a.report(p.obj, "IST0144", Warning, "spec.securityContext.runAsUser", text)
	}
	for i, c := range p.spec.Containers {
		if c.Name == "istio-proxy" || c.Name == "istio-operator" {
			continue
		}
		if sc := c.SecurityContext; sc != nil && sc.RunAsUser != nil && *sc.RunAsUser == 1337 {
			a.report(p.obj, "IST0144", Warning, fmt.Sprintf("spec.containers[%d].securityContext.runAsUser", i), text)
		}
	}
}
