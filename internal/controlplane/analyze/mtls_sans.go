package analyze

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// mtlsSANs is Lucid's LUC0016: a DestinationRule's tls.subjectAltNames (ISTIO_MUTUAL, or
// MUTUAL naming SPIFFE identities) that no workload behind its host (or subset) runs as.
// The client's sidecar checks the server's certificate against those names only, so every
// connection fails with 503 UF (CERTIFICATE_VERIFY_FAILED). Workloads without a sidecar
// have no mesh identity and are not judged; nor is MUTUAL naming DNS names (an external
// server's certificate is not the mesh's to know).
func (a *analyzer) mtlsSANs() {
	a.serviceDestinationRules(func(o *config.Object, spec *networkingv1alpha3.DestinationRule, host string, s *model.Service) { // mtls.go
		a.policySANs(o, host, s, "spec.trafficPolicy", spec.GetTrafficPolicy(), "", nil)
		for i, sub := range spec.GetSubsets() {
			a.policySANs(o, host, s, fmt.Sprintf("spec.subsets[%d].trafficPolicy", i), sub.GetTrafficPolicy(), sub.GetName(), sub.GetLabels())
		}
	})
}

// policySANs checks a traffic policy's tls and each port-level tls at field.
func (a *analyzer) policySANs(o *config.Object, host string, s *model.Service, field string, p *networkingv1alpha3.TrafficPolicy, subset string, labels map[string]string) {
	if p == nil {
		return
	}
	a.tlsSANs(o, host, s, field+".tls", p.GetTls(), 0, subset, labels)
	for i, pl := range p.GetPortLevelSettings() {
		a.tlsSANs(o, host, s, fmt.Sprintf("%s.portLevelSettings[%d].tls", field, i), pl.GetTls(), pl.GetPort().GetNumber(), subset, labels)
	}
}

// tlsSANs reports tls (at field) when its subjectAltNames match none of the identities of
// the workloads it applies to: the host's on port (0: every port), of the subset's labels.
func (a *analyzer) tlsSANs(o *config.Object, host string, s *model.Service, field string, tls *networkingv1alpha3.ClientTLSSettings, port uint32, subset string, labels map[string]string) {
	sans := tls.GetSubjectAltNames()
	mode := tls.GetMode()
	if len(sans) == 0 || (mode != networkingv1alpha3.ClientTLSSettings_ISTIO_MUTUAL && mode != networkingv1alpha3.ClientTLSSettings_MUTUAL) {
		return
	}
	if mode == networkingv1alpha3.ClientTLSSettings_MUTUAL && slices.ContainsFunc(sans, func(n string) bool { return !strings.HasPrefix(n, "spiffe://") }) {
		return // names a certificate the mesh did not issue: not ours to judge
	}
	ids, aliases := a.workloadIDs(host, s, port, labels)
	if len(ids) == 0 {
		return // no workload with a sidecar behind it: nothing to compare with
	}
	for _, n := range sans {
		if ids[n] != "" || aliases[n] {
			return
		}
	}
	what := host
	if subset != "" {
		what = "subset " + subset + " of " + host
	}
	if port != 0 {
		what += fmt.Sprintf(" port %d", port)
	}
	runAs := slices.Sorted(maps.Keys(ids))
	m := a.reportf(o, "LUC0016", Warning, field+".subjectAltNames",
		"DestinationRule %s's tls.subjectAltNames (%s) match no workload of %s: every connection will fail with 503 UF (CERTIFICATE_VERIFY_FAILED)",
		o.Name, strings.Join(sans, ", "), what)
	var detail []string
	for _, id := range runAs {
		detail = append(detail, "workload "+ids[id]+" runs as "+id)
	}
	m.Detail = strings.Join(detail, "\n")
	m.Fix = "name the identities the workloads run as (" + strings.Join(runAs, ", ") + ") in subjectAltNames, or remove subjectAltNames (ISTIO_MUTUAL then accepts the service's own accounts); or run the workloads as the service account named"
}

// workloadIDs are the SPIFFE identities of the host's endpoints with a sidecar on port (0:
// every port) whose labels include labels, each with a workload that runs as it, and the
// same identities in the mesh's trust domain aliases (they name the same workloads).
func (a *analyzer) workloadIDs(host string, s *model.Service, port uint32, labels map[string]string) (map[string]string, map[string]bool) {
	ids, aliases := map[string]string{}, map[string]bool{}
	td := a.m.TrustDomain()
	for _, p := range s.Ports {
		if port != 0 && p.Number != port {
			continue
		}
		for _, e := range a.m.Endpoints(host, p.Number) {
			if !a.m.HasSidecar(e) || !selects(labels, e.Labels) {
				continue
			}
			id := e.ServiceAccount
			if !strings.HasPrefix(id, "spiffe://") {
				id = "spiffe://" + td + "/ns/" + e.Namespace + "/sa/" + cmp.Or(id, "default")
			}
			ids[id] = cmp.Or(ids[id], e.Workload, e.Address)
			for _, alias := range a.m.TrustDomainAliases() {
				aliases[strings.Replace(id, "spiffe://"+td+"/", "spiffe://"+alias+"/", 1)] = true
			}
		}
	}
	return ids, aliases
}
