package analyze

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// The Sidecar checks: Istio's sidecar SelectorAnalyzer: IST0101 (a selector that selects
// no pod of the namespace), IST0002 (egressProxy, ignored), IST0110 (a pod two Sidecars select), IST0111 (two Sidecars
// without selector in one namespace), IST0167 (a Sidecar for ambient workloads).

// Lucid's local mode has WorkloadEntries where a cluster has pods: a Sidecar that selects a
// WorkloadEntry selects a workload (no IST0101), and two selecting one WorkloadEntry is
// IST0110 as for a pod.
func (a *analyzer) sidecars() {
	bySelector := map[*pod][]*config.Object{}
	byEntry := map[*config.Object][]*config.Object{}
	byNamespace := map[string][]*config.Object{}
	for _, o := range a.kind(config.KindSidecar) {
		sc, ok := o.Spec.(*networkingv1alpha3.Sidecar)
		if !ok {
			continue
		}
		if sc.GetOutboundTrafficPolicy().GetEgressProxy() != nil {
			a.reportf(o, "IST0002", Warning, "spec.outboundTrafficPolicy.egressProxy", "Deprecated: %s", "OutboundTrafficPolicy.EgressProxy ignored")
		}
		sel := sc.GetWorkloadSelector().GetLabels()
		if len(sel) == 0 {
			byNamespace[o.Namespace] = append(byNamespace[o.Namespace], o)
			continue
		}
		found := false
		for _, p := range a.pods {
			if p.ns == o.Namespace && selects(sel, p.labels) {
				found = true
				bySelector[p] = append(bySelector[p], o)
			}
		}
		for _, we := range a.kind(config.KindWorkloadEntry) {
			if e, ok := we.Spec.(*networkingv1alpha3.WorkloadEntry); ok && we.Namespace == o.Namespace && selects(sel, e.GetLabels()) {
				found = true
				byEntry[we] = append(byEntry[we], o)
			}
		}
		if !found {
			keys := slices.Sorted(maps.Keys(sel))
			m := a.reportf(o, "IST0101", Error, "spec.workloadSelector.labels."+keys[0], "Referenced %s not found: %q", "selector", selectorString(sel))
			m.Detail = fmt.Sprintf("no pod in namespace %s has the labels %s: the Sidecar applies to nothing", o.Namespace, labelList(sel))
		}
	}
	reported := map[*config.Object]bool{}
	for _, p := range slices.SortedFunc(maps.Keys(bySelector), cmpPods) {
		list := bySelector[p]
		ambient := p.annotations["ambient.istio.io/redirection"] == "enabled"
		if len(list) == 1 && !ambient {
			continue
		}
		names := sidecarNames(list)
		for _, o := range list {
			if ambient {
				if !reported[o] {
					reported[o] = true
					a.reportf(o, "IST0167", Warning, "", "The policy has no impact: %s.", "selected workload is in ambient mode, the policy has no impact")
				}
				continue
			}
			a.reportf(o, "IST0110", Error, "metadata.name", "The Sidecars %v in namespace %q select the same workload pod %q, which can lead to undefined behavior.", names, p.ns, p.name)
		}
	}
	for _, we := range slices.SortedFunc(maps.Keys(byEntry), func(x, y *config.Object) int { return strings.Compare(x.Name, y.Name) }) {
		if list := byEntry[we]; len(list) > 1 {
			for _, o := range list {
				a.reportf(o, "IST0110", Error, "metadata.name", "The Sidecars %v in namespace %q select the same workload pod %q, which can lead to undefined behavior.", sidecarNames(list), we.Namespace, we.Name)
			}
		}
	}
	for _, ns := range slices.Sorted(maps.Keys(byNamespace)) {
		list := byNamespace[ns]
		if nsObj := a.namespaces[ns]; nsObj != nil && namespaceAmbient(nsObj.Labels) {
			for _, o := range list {
				if !reported[o] {
					reported[o] = true
					a.reportf(o, "IST0167", Warning, "", "The policy has no impact: %s.", "namespace is in ambient mode, the policy has no impact")
				}
			}
			continue
		}
		if len(list) > 1 {
			for _, o := range list {
				a.reportf(o, "IST0111", Error, "", "The Sidecars %v in namespace %q have no workload selector, which can lead to undefined behavior.", sidecarNames(list), ns)
			}
		}
	}
}

func cmpPods(x, y *pod) int {
	if x.ns != y.ns {
		if x.ns < y.ns {
			return -1
		}
		return 1
	}
	if x.name < y.name {
		return -1
	}
	if x.name > y.name {
		return 1
	}
	return 0
}

func sidecarNames(list []*config.Object) []string {
	var names []string
	for _, o := range list {
		names = append(names, o.Name)
	}
	slices.Sort(names)
	return names
}

// namespaceAmbient is Istio's NamespaceInAmbientMode.
func namespaceAmbient(labels map[string]string) bool {
	if labels["istio-injection"] == "enabled" || labels["istio.io/rev"] != "" {
		return false
	}
	return labels["istio.io/dataplane-mode"] == "ambient"
}
