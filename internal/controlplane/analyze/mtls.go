package analyze

import (
	"fmt"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// mtlsConflicts is Lucid's LUC0015 (Istio's retired IST0113 MTLSPolicyConflict): a
// DestinationRule whose trafficPolicy (or port-level setting) turns TLS off towards a
// service whose workloads have a sidecar and a STRICT PeerAuthentication on that port.
// Clients obeying it send plaintext and every request fails with 503 UC (the server
// closes plaintext connections).
func (a *analyzer) mtlsConflicts() {
	a.serviceDestinationRules(func(o *config.Object, _ *networkingv1alpha3.DestinationRule, host string, s *model.Service) {
		dr := a.m.DestinationRule(o.Namespace, nil, host)
		for _, p := range s.Ports {
			if dr.Policy(p.Number, "").GetTls().GetMode() != networkingv1alpha3.ClientTLSSettings_DISABLE {
				continue
			}
			for _, e := range a.m.Endpoints(host, p.Number) {
				if !a.m.HasSidecar(e) {
					continue
				}
				mode, policy := a.m.InboundMTLS(&model.Proxy{Namespace: e.Namespace, Labels: e.Labels}, e.Port)
				if mode != model.MTLSStrict {
					continue
				}
				if policy == "" {
					policy = "the mesh default"
				} else {
					policy = "PeerAuthentication " + policy
				}
				m := a.reportf(o, "LUC0015", Error, "spec.trafficPolicy.tls.mode",
					"DestinationRule %s sets tls.mode DISABLE for %s port %d, but workload %s requires mutual TLS there (%s is STRICT): every request will fail with 503 UC",
					o.Name, host, p.Number, e.Workload, policy)
				m.Detail = fmt.Sprintf("endpoint %s:%d", e.Address, e.Port)
				m.Fix = "remove tls.mode DISABLE (auto mTLS then sends ISTIO_MUTUAL) or set it to ISTIO_MUTUAL; or make the PeerAuthentication PERMISSIVE"
				break
			}
		}
	})
}

// serviceDestinationRules calls f for each valid DestinationRule whose host is a service
// of the mesh (nothing in an analysis without the mesh's model).
func (a *analyzer) serviceDestinationRules(f func(o *config.Object, spec *networkingv1alpha3.DestinationRule, host string, s *model.Service)) {
	if a.m == nil {
		return
	}
	for _, o := range a.kind(config.KindDestinationRule) {
		spec, ok := o.Spec.(*networkingv1alpha3.DestinationRule)
		if !ok || o.Invalid {
			continue
		}
		host := model.ResolveHost(spec.GetHost(), o.Namespace)
		if s := a.m.Service(host); s != nil {
			f(o, spec, host, s)
		}
	}
}
