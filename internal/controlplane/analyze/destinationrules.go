package analyze

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// The DestinationRule checks: Istio's SubsetSelectPodAnalyzer (IST0174, IST0173) and
// CaCertificateAnalyzer (IST0128, IST0129).

func (a *analyzer) destinationRules() {
	for _, o := range a.kind(config.KindDestinationRule) {
		dr, ok := o.Spec.(*networkingv1alpha3.DestinationRule)
		if !ok {
			continue
		}
		a.caCertificates(o, dr)
		e := a.lookup(o.Namespace, dr.GetExportTo(), dr.GetHost())
		if e == nil {
			m := a.reportf(o, "IST0174", Warning, "spec.host", "The host %s defined in the DestinationRule does not match any services in the mesh.", dr.GetHost())
			m.Detail = fmt.Sprintf("%s is neither a ServiceEntry host nor a Kubernetes Service visible in namespace %s: the rule applies to nothing", dr.GetHost(), o.Namespace)
			m.Fix = "correct spec.host (a short name is a Service in the rule's namespace), or add the ServiceEntry or Service"
			continue
		}
		a.subsetsSelectNothing(o, dr, e)
	}
}

// subsetsSelectNothing is IST0173: a subset whose labels select no workload of its
// service. The service's workloads are the pods and WorkloadEntries its selector selects
// in its namespace (a ServiceEntry's inline endpoints for one without selector); Istio's
// analyzer only looks for any pod anywhere with the subset's labels (and the ServiceEntry's
// selector), which misses a subset served only by another service's pods.
func (a *analyzer) subsetsSelectNothing(o *config.Object, dr *networkingv1alpha3.DestinationRule, e *registryEntry) {
	ws := a.serviceWorkloads(e)
	for i, s := range dr.GetSubsets() {
		want := s.GetLabels()
		if slices.ContainsFunc(ws, func(w workload) bool { return selects(want, w.labels) }) {
			continue
		}
		m := a.reportf(o, "IST0173", Error, fmt.Sprintf("spec.subsets[%d].labels", i),
			"The Subset %s defined in the DestinationRule does not select any pods. Which may lead to 503 UH (NoHealthyUpstream).", s.GetName())
		m.Detail, m.Fix = explainSubset(s, e, ws)
	}
}

// serviceWorkloads are the workloads behind a registry entry, with their labels as Istio
// matches subsets against them (a pod's labels get its node's topology labels).
func (a *analyzer) serviceWorkloads(e *registryEntry) []workload {
	sel, ns := e.selector, e.obj.Namespace
	if e.service != nil {
		sel = e.service.selector
		if sel == nil {
			return nil // a Service without selector: its endpoints are not in the files
		}
	}
	var out []workload
	if sel != nil {
		for _, w := range a.workloads() {
			if w.ns != ns || !selects(sel, w.labels) {
				continue
			}
			if w.kind == config.KindPod {
				w.labels = a.podTopologyLabels(w)
			}
			out = append(out, w)
		}
		return out
	}
	if se, ok := e.obj.Spec.(*networkingv1alpha3.ServiceEntry); ok {
		for i, ep := range se.GetEndpoints() {
			out = append(out, workload{obj: e.obj, kind: fmt.Sprintf("endpoint #%d", i+1), ns: ns, labels: ep.GetLabels()})
		}
	}
	return out
}

// podTopologyLabels adds the labels Istio gives a pod's endpoints from its node
// (topology.kubernetes.io/region, zone, topology.istio.io/subzone, kubernetes.io/hostname).
func (a *analyzer) podTopologyLabels(w workload) map[string]string {
	p := a.podOf[w.obj]
	if p == nil || p.spec == nil || p.spec.NodeName == "" {
		return w.labels
	}
	out := maps.Clone(w.labels)
	if out == nil {
		out = map[string]string{}
	}
	node := a.nodes[p.spec.NodeName]
	for _, k := range []string{"topology.kubernetes.io/region", "topology.kubernetes.io/zone", "topology.istio.io/subzone"} {
		if v := node[k]; v != "" {
			out[k] = v
		}
	}
	out["kubernetes.io/hostname"] = p.spec.NodeName
	return out
}

// explainSubset says which labels the subset wants and which labels the service's
// workloads have, and proposes the smallest fix.
func explainSubset(s *networkingv1alpha3.Subset, e *registryEntry, ws []workload) (detail, fix string) {
	want := s.GetLabels()
	sel := e.selector
	if e.service != nil {
		sel = e.service.selector
	}
	service := e.obj.Kind + " " + e.obj.Namespace + "/" + e.obj.Name
	lines := []string{fmt.Sprintf("subset %s wants %s; %s has %d workloads", s.GetName(), labelList(want), service, len(ws))}
	if sel != nil {
		lines[0] = fmt.Sprintf("subset %s wants %s (with the service's selector %s); %s has %d workloads",
			s.GetName(), labelList(want), labelList(sel), service, len(ws))
	}
	keys := slices.Sorted(maps.Keys(want))
	bestMissing, best, bestWhy := -1, "", ""
	for _, w := range ws {
		var have, missing, differ []string
		for _, k := range slices.Sorted(maps.Keys(sel)) {
			have = append(have, k+"="+w.labels[k])
		}
		for _, k := range keys {
			v, ok := w.labels[k]
			switch {
			case !ok:
				missing = append(missing, "no "+k+" label")
			case v != want[k]:
				differ = append(differ, k+"="+v)
			}
		}
		name := w.kind + " " + w.obj.Name
		if strings.HasPrefix(w.kind, "endpoint") {
			name = w.kind // a ServiceEntry's inline endpoint
		}
		desc := name + " has "
		if len(have) > 0 {
			desc += strings.Join(have, ", ") + " but "
		}
		desc += strings.Join(append(differ, missing...), " and ")
		lines = append(lines, desc)
		if len(differ) == 0 && len(missing) > 0 && (bestMissing < 0 || len(missing) < bestMissing) {
			bestMissing, best, bestWhy = len(missing), name, strings.Join(missing, " and ")
		}
	}
	if len(ws) == 0 {
		if sel != nil {
			lines = append(lines, "no workload matches the service's selector "+labelList(sel))
		} else {
			lines = append(lines, "the service has no workloads in the files")
		}
	}
	var add []string
	for _, k := range keys {
		add = append(add, k+": "+want[k])
	}
	switch {
	case best != "":
		fix = fmt.Sprintf("add `%s` to the labels of %s (it has %s), or remove subset %s if nothing should serve it", strings.Join(add, ", "), best, bestWhy, s.GetName())
	default:
		fix = fmt.Sprintf("label the workloads meant for subset %s with `%s`, or correct the subset's labels", s.GetName(), strings.Join(add, ", "))
	}
	return strings.Join(lines, "\n"), fix
}

// caCertificates is IST0128/IST0129: TLS origination (SIMPLE or MUTUAL) that does not
// verify the server: no caCertificates (and no credentialName with a workload selector).
func (a *analyzer) caCertificates(o *config.Object, dr *networkingv1alpha3.DestinationRule) {
	unverified := func(t *networkingv1alpha3.ClientTLSSettings) bool {
		mode := t.GetMode()
		return (mode == networkingv1alpha3.ClientTLSSettings_SIMPLE || mode == networkingv1alpha3.ClientTLSSettings_MUTUAL) &&
			t.GetCaCertificates() == "" && (t.GetCredentialName() == "" || dr.GetWorkloadSelector() == nil)
	}
	name := o.Namespace + "/" + o.Name
	if t := dr.GetTrafficPolicy().GetTls(); unverified(t) {
		m := a.reportf(o, "IST0128", Warning, "spec.trafficPolicy.tls.caCertificates",
			"DestinationRule %s in namespace %s has TLS mode set to %s but no caCertificates are set to validate server identity for host: %s",
			name, o.Namespace, t.GetMode(), dr.GetHost())
		m.Field = "spec.trafficPolicy.tls"
	}
	for i, p := range dr.GetTrafficPolicy().GetPortLevelSettings() {
		if t := p.GetTls(); unverified(t) {
			field := fmt.Sprintf("spec.trafficPolicy.portLevelSettings[%d].tls", i)
			a.reportf(o, "IST0129", Warning, field,
				"DestinationRule %s in namespace %s has TLS mode set to %s but no caCertificates are set to validate server identity for host: %s at port %s",
				name, o.Namespace, t.GetMode(), dr.GetHost(), fmt.Sprintf("number:%d", p.GetPort().GetNumber()))
		}
	}
}
