package analyze

import (
	"fmt"
	"slices"
	"strings"

	securityv1beta1 "istio.io/api/security/v1beta1"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// The AuthorizationPolicy checks: Istio's AuthorizationPoliciesAnalyzer: IST0127 (a
// policy that selects no workload in the mesh), IST0101 (a source namespace that does
// not exist). Lucid counts WorkloadEntries as workloads in the mesh (they run with
// sidecars), and checks namespaces only when the input holds Namespace objects: without
// them Istio's analyzer reports every namespace, "*" included, as not found.

func (a *analyzer) authorizationPolicies() {
	inMesh := map[string][]map[string]string{} // namespace → labels of its pods in the mesh
	for _, p := range a.pods {
		if a.podInMesh(p) {
			inMesh[p.ns] = append(inMesh[p.ns], p.labels)
		}
		if p.annotations["ambient.istio.io/redirection"] == "enabled" {
			inMesh[p.ns] = append(inMesh[p.ns], p.labels)
		}
	}
	for _, w := range a.workloads() {
		if w.kind == config.KindWorkloadEntry {
			inMesh[w.ns] = append(inMesh[w.ns], w.labels)
		}
	}
	root := a.mesh.GetRootNamespace()
	for _, o := range a.kind(config.KindAuthorizationPolicy) {
		ap, ok := o.Spec.(*securityv1beta1.AuthorizationPolicy)
		if !ok {
			continue
		}
		sel := ap.GetSelector().GetMatchLabels()
		switch {
		case o.Namespace == root && ap.GetSelector() != nil:
			if !slices.ContainsFunc(allLabels(inMesh), func(l map[string]string) bool { return selects(sel, l) }) {
				a.noMatchingWorkloads(o, selectorString(sel))
			}
		case o.Namespace == root:
		case ap.GetSelector() == nil:
			if len(inMesh[o.Namespace]) == 0 {
				a.noMatchingWorkloads(o, "")
			}
		case !slices.ContainsFunc(inMesh[o.Namespace], func(l map[string]string) bool { return selects(sel, l) }):
			a.noMatchingWorkloads(o, selectorString(sel))
		}
		for i, r := range ap.GetRules() {
			for j, f := range r.GetFrom() {
				src := f.GetSource()
				for k, ns := range append(slices.Clone(src.GetNamespaces()), src.GetNotNamespaces()...) {
					if len(a.namespaces) == 0 || a.namespaceExists(ns) {
						continue
					}
					field := fmt.Sprintf("spec.rules[%d].from[%d].source.namespaces[%d]", i, j, k)
					if k >= len(src.GetNamespaces()) {
						field = fmt.Sprintf("spec.rules[%d].from[%d].source.notNamespaces[%d]", i, j, k-len(src.GetNamespaces()))
					}
					a.reportf(o, "IST0101", Error, field, "Referenced %s not found: %q", "namespace", ns)
				}
			}
		}
	}
}

func (a *analyzer) noMatchingWorkloads(o *config.Object, sel string) {
	m := a.reportf(o, "IST0127", Warning, "", "No matching workloads for this resource with the following labels: %s", sel)
	m.Detail = "no pod with a sidecar (or in ambient mode) is selected: the policy applies to nothing"
}

func allLabels(m map[string][]map[string]string) []map[string]string {
	var out []map[string]string
	for _, ls := range m {
		out = append(out, ls...)
	}
	return out
}

// namespaceExists matches a policy's namespace pattern ("*", "prefix*", "*suffix" or a
// name) against the Namespace objects.
func (a *analyzer) namespaceExists(exp string) bool {
	for ns := range a.namespaces {
		switch {
		case exp == "*":
			return true
		case strings.HasPrefix(exp, "*"):
			if strings.HasSuffix(ns, exp[1:]) {
				return true
			}
		case strings.HasSuffix(exp, "*"):
			if strings.HasPrefix(ns, exp[:len(exp)-1]) {
				return true
			}
		case strings.EqualFold(ns, exp):
			return true
		}
	}
	return false
}

// podInMesh is Istio's PodInMesh: an istio-proxy container, else the sidecar.istio.io/inject
// label, else the annotation, else its namespace's istio-injection label.
func (a *analyzer) podInMesh(p *pod) bool {
	if p.spec != nil && hasProxy(p.spec) {
		return true
	}
	if v, ok := p.labels["sidecar.istio.io/inject"]; ok {
		return v == "true"
	}
	if v, ok := p.annotations["sidecar.istio.io/inject"]; ok {
		return v == "true"
	}
	if ns := a.namespaces[p.ns]; ns != nil {
		return ns.Labels["istio-injection"] == "enabled"
	}
	return p.spec == nil // a pod of the running registry: it has a sidecar, or Lucid would not know it
}
