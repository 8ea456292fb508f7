package analyze

import (
	"fmt"
	"strings"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// sidecarEgress is Lucid's LUC0014 for every Sidecar egress host that imports nothing:
// no service and no VirtualService visible in the Sidecar's namespace matches it, so the
// workloads it applies to get no cluster and no route for that host.
func (a *analyzer) sidecarEgress() {
	if a.m == nil {
		return
	}
	for _, o := range a.kind(config.KindSidecar) {
		if sc, ok := o.Spec.(*networkingv1alpha3.Sidecar); ok {
			a.egressHosts(o, sc)
		}
	}
}

func (a *analyzer) egressHosts(o *config.Object, sc *networkingv1alpha3.Sidecar) {
	root := o.Namespace == a.m.RootNamespace() && sc.GetWorkloadSelector() == nil
	for i, eg := range sc.GetEgress() {
		for j, h := range eg.GetHosts() {
			ns, pattern, ok := strings.Cut(h, "/")
			if !ok || ns == "~" || (ns == "." && root) {
				continue // validation's business; "~" imports nothing on purpose; "." of a mesh default is each proxy's namespace
			}
			if ns == "." {
				ns = o.Namespace
			}
			if a.imports(o.Namespace, ns, pattern, root) {
				continue
			}
			m := a.reportf(o, "LUC0014", Warning, fmt.Sprintf("spec.egress[%d].hosts[%d]", i, j),
				"egress host %q matches no service or VirtualService visible in namespace %s", h, o.Namespace)
			m.Detail = "the workloads this Sidecar applies to get no cluster and no route for it: requests to such a host are blocked or passed through per outboundTrafficPolicy"
			m.Fix = "correct the namespace or host (namespace/dnsName, e.g. ./reviews.default.svc.cluster.local, shared/*), or create the service"
		}
	}
}

// imports reports whether a service or VirtualService of namespace ns (any for "*") whose
// host matches pattern is visible from namespace from (from anywhere for a root Sidecar).
func (a *analyzer) imports(from, ns, pattern string, anyNamespace bool) bool {
	for _, s := range a.m.Services() {
		if (ns == "*" || s.Namespace == ns) && (anyNamespace || s.VisibleFrom(from)) && model.HostMatches(pattern, s.Host) {
			return true
		}
	}
	for _, v := range a.m.VirtualServices() {
		if ns != "*" && v.Config.Namespace != ns {
			continue
		}
		for _, h := range v.Hosts {
			if model.HostMatches(pattern, h) || model.HostMatches(h, pattern) {
				return true
			}
		}
	}
	return false
}
