package analyze

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// sidecars are Istio's Sidecar analyzers and one of Lucid's:
//   - IST0111: two or more Sidecars without a workload selector in one namespace (which one
//     applies is undefined in Istio; Lucid takes the first by name);
//   - IST0110: a workload selected by two or more Sidecars (same);
//   - IST0101: a Sidecar whose workload selector matches no workload of its namespace;
//   - LUC0010: an egress host that matches no service and no VirtualService the Sidecar's
//     namespace can see: the workloads lose that traffic (no cluster, no route).
func (a *analyzer) sidecars() []Message {
	byNS := map[string][]*config.Object{}
	for _, o := range a.kind(config.KindSidecar) {
		byNS[o.Namespace] = append(byNS[o.Namespace], o)
	}
	var out []Message
	for _, ns := range slices.Sorted(maps.Keys(byNS)) {
		list := byNS[ns]
		slices.SortFunc(list, func(x, y *config.Object) int { return strings.Compare(x.Name, y.Name) })
		var unselected []*config.Object
		selecting := map[*model.Workload][]*config.Object{}
		for _, o := range list {
			sc := o.Spec.(*networkingv1alpha3.Sidecar)
			sel := sc.GetWorkloadSelector()
			if sel == nil {
				unselected = append(unselected, o)
			} else {
				matched := false
				for _, w := range a.m.Workloads() {
					if w.Namespace == ns && subsetOf(sel.GetLabels(), w.Labels) {
						selecting[w] = append(selecting[w], o)
						matched = true
					}
				}
				if !matched {
					m := at(o, "IST0101", Error, "spec.workloadSelector", fmt.Sprintf("Referenced selector not found: %q", selectorString(sel.GetLabels())))
					m.Detail = fmt.Sprintf("no workload in namespace %s has the labels %s: this Sidecar applies to nobody", ns, labelList(sel.GetLabels()))
					m.Fix = "correct the labels, or remove the Sidecar"
					out = append(out, m)
				}
			}
			out = append(out, a.egressHosts(o, sc)...)
		}
		if len(unselected) > 1 {
			names := objectNames(unselected)
			for _, o := range unselected {
				m := at(o, "IST0111", Error, "spec", fmt.Sprintf("The Sidecars %v in namespace %q have no workload selector, which can lead to undefined behavior.", names, ns))
				m.Detail = fmt.Sprintf("Lucid applies %s (the first by name) to every workload no other Sidecar selects", unselected[0].Name)
				m.Fix = "keep one Sidecar without workloadSelector per namespace; give the others a selector or merge them"
				out = append(out, m)
			}
		}
		ws := make([]*model.Workload, 0, len(selecting))
		for w := range selecting {
			ws = append(ws, w)
		}
		slices.SortFunc(ws, func(x, y *model.Workload) int { return strings.Compare(x.Name, y.Name) })
		for _, w := range ws {
			scs := selecting[w]
			if len(scs) < 2 {
				continue
			}
			names := objectNames(scs)
			for _, o := range scs {
				m := at(o, "IST0110", Error, "spec.workloadSelector", fmt.Sprintf("The Sidecars %v in namespace %q select the same workload pod %q, which can lead to undefined behavior.", names, ns, w.Name))
				m.Detail = fmt.Sprintf("Lucid applies %s (the first by name) to %s", scs[0].Name, w.Name)
				m.Fix = "make the workload selectors of the Sidecars disjoint"
				out = append(out, m)
			}
		}
	}
	return out
}

// egressHosts is LUC0010 for o's egress hosts that import nothing.
func (a *analyzer) egressHosts(o *config.Object, sc *networkingv1alpha3.Sidecar) []Message {
	root := o.Namespace == a.m.RootNamespace() && sc.GetWorkloadSelector() == nil
	var out []Message
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
			m := at(o, "LUC0010", Warning, fmt.Sprintf("spec.egress[%d].hosts[%d]", i, j),
				fmt.Sprintf("egress host %q matches no service or VirtualService visible in namespace %s", h, o.Namespace))
			m.Detail = "the workloads this Sidecar applies to get no cluster and no route for it: requests to such a host are blocked or passed through per outboundTrafficPolicy"
			m.Fix = "correct the namespace or host (namespace/dnsName, e.g. ./reviews.default.svc.cluster.local, shared/*), or create the service"
			out = append(out, m)
		}
	}
	return out
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

func objectNames(os []*config.Object) []string {
	out := make([]string, len(os))
	for i, o := range os {
		out[i] = o.Name
	}
	return out
}
