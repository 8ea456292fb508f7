package model

import (
	"fmt"
	"slices"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// DestinationRule is the DestinationRule in force for one host in one namespace: Istio
// merges the DestinationRules of a namespace that name the same host (subsets appended,
// the first traffic policy kept), and so does Lucid.
type DestinationRule struct {
	Host     string // resolved
	Spec     *networkingv1alpha3.DestinationRule
	ExportTo []string
	Selector map[string]string // workloadSelector.labels; nil when unset
	Config   *config.Object    // the first DestinationRule (creation order)
	Merged   []*config.Object  // every DestinationRule merged into this one, Config first
}

// ConfigPath is the "istio" metadata config reference of the rule.
func (d *DestinationRule) ConfigPath() string {
	return "/apis/networking.istio.io/v1/namespaces/" + d.Config.Namespace + "/destination-rule/" + d.Config.Name
}

// Subset returns the named subset, or nil.
func (d *DestinationRule) Subset(name string) *networkingv1alpha3.Subset {
	if d == nil {
		return nil
	}
	for _, s := range d.Spec.GetSubsets() {
		if s.GetName() == name {
			return s
		}
	}
	return nil
}

// Policy returns the traffic policy for a service port and subset ("" for none), merged
// as Istio merges it: the rule's policy with its port-level settings for port, then the
// subset's policy (each field it sets replaces the whole field) with its port-level settings.
func (d *DestinationRule) Policy(port uint32, subset string) *networkingv1alpha3.TrafficPolicy {
	if d == nil {
		return nil
	}
	p := mergePolicy(nil, d.Spec.GetTrafficPolicy(), port)
	if subset != "" {
		if s := d.Subset(subset); s != nil && s.GetTrafficPolicy() != nil {
			p = mergePolicy(p, s.GetTrafficPolicy(), port)
		}
	}
	return p
}

func mergePolicy(base, over *networkingv1alpha3.TrafficPolicy, port uint32) *networkingv1alpha3.TrafficPolicy {
	if over == nil {
		return base
	}
	out := &networkingv1alpha3.TrafficPolicy{}
	if base != nil {
		out.LoadBalancer, out.ConnectionPool, out.OutlierDetection, out.Tls = base.LoadBalancer, base.ConnectionPool, base.OutlierDetection, base.Tls
		out.Tunnel, out.ProxyProtocol, out.RetryBudget = base.Tunnel, base.ProxyProtocol, base.RetryBudget
	}
	if over.LoadBalancer != nil {
		out.LoadBalancer = over.LoadBalancer
	}
	if over.ConnectionPool != nil {
		out.ConnectionPool = over.ConnectionPool
	}
	if over.OutlierDetection != nil {
		out.OutlierDetection = over.OutlierDetection
	}
	if over.Tls != nil {
		out.Tls = over.Tls
	}
	if over.Tunnel != nil {
		out.Tunnel = over.Tunnel
	}
	if over.ProxyProtocol != nil {
		out.ProxyProtocol = over.ProxyProtocol
	}
	if over.RetryBudget != nil {
		out.RetryBudget = over.RetryBudget
	}
	for _, pl := range over.GetPortLevelSettings() {
		if pl.GetPort().GetNumber() != port {
			continue
		}
		if pl.LoadBalancer != nil {
			out.LoadBalancer = pl.LoadBalancer
		}
		if pl.ConnectionPool != nil {
			out.ConnectionPool = pl.ConnectionPool
		}
		if pl.OutlierDetection != nil {
			out.OutlierDetection = pl.OutlierDetection
		}
		if pl.Tls != nil {
			out.Tls = pl.Tls
		}
		break
	}
	return out
}

func (b *builder) addDestinationRule(o *config.Object) {
	spec := o.Spec.(*networkingv1alpha3.DestinationRule)
	host := ResolveHost(spec.GetHost(), o.Namespace)
	var selector map[string]string
	if ws := spec.GetWorkloadSelector(); ws != nil {
		selector = ws.GetMatchLabels()
		if selector == nil {
			selector = map[string]string{}
		}
	}
	b.addSelector(selector)
	for _, d := range b.m.destRules[o.Namespace] {
		if d.Host != host || d.Selector != nil || selector != nil {
			continue
		}
		// Merge into the earlier rule: new subsets appended, first traffic policy kept.
		for i, s := range spec.GetSubsets() {
			if d.Subset(s.GetName()) != nil {
				b.warn(o, fmt.Sprintf("spec.subsets[%d].name", i), "subset %q of %s is already defined by DestinationRule %s/%s; this one is ignored", s.GetName(), host, d.Config.Namespace, d.Config.Name)
				continue
			}
			d.Spec.Subsets = append(d.Spec.Subsets, s)
		}
		if d.Spec.TrafficPolicy == nil {
			d.Spec.TrafficPolicy = spec.GetTrafficPolicy()
		} else if spec.GetTrafficPolicy() != nil {
			b.warn(o, "spec.trafficPolicy", "ignored: DestinationRule %s/%s for the same host came first and sets a traffic policy", d.Config.Namespace, d.Config.Name)
		}
		d.Merged = append(d.Merged, o)
		return
	}
	clone := &networkingv1alpha3.DestinationRule{
		Host: spec.GetHost(), TrafficPolicy: spec.GetTrafficPolicy(),
		Subsets: slices.Clone(spec.GetSubsets()), ExportTo: spec.GetExportTo(), WorkloadSelector: spec.GetWorkloadSelector(),
	}
	b.m.destRules[o.Namespace] = append(b.m.destRules[o.Namespace], &DestinationRule{
		Host: host, Spec: clone, ExportTo: spec.GetExportTo(), Selector: selector, Config: o, Merged: []*config.Object{o},
	})
}

// DestinationRule returns the DestinationRule that applies to host for a sidecar in
// namespace ns with the given labels, looked up as Istio does: the proxy's namespace
// (a rule whose workloadSelector matches the proxy first), then the service's namespace,
// then the root namespace, each time the most specific host match among rules exported
// to ns. nil when none applies.
func (m *Mesh) DestinationRule(ns string, labels map[string]string, host string) *DestinationRule {
	if d := m.destRuleIn(ns, ns, labels, host, true); d != nil {
		return d
	}
	if d := m.destRuleIn(ns, ns, labels, host, false); d != nil {
		return d
	}
	if s := m.serviceByHost[host]; s != nil && s.Namespace != ns {
		if d := m.destRuleIn(s.Namespace, ns, nil, host, false); d != nil {
			return d
		}
	}
	if m.rootNamespace != ns {
		return m.destRuleIn(m.rootNamespace, ns, nil, host, false)
	}
	return nil
}

func (m *Mesh) destRuleIn(in, from string, labels map[string]string, host string, withSelector bool) *DestinationRule {
	var best *DestinationRule
	for _, d := range m.destRules[in] {
		if withSelector != (d.Selector != nil) {
			continue
		}
		if withSelector && (in != from || !selects(d.Selector, labels)) {
			continue
		}
		if in != from && !exported(d.ExportTo, in, from) {
			continue
		}
		if !HostMatches(d.Host, host) {
			continue
		}
		if best == nil || specificity(d.Host) > specificity(best.Host) {
			best = d
		}
	}
	return best
}

// checkDestinationRules warns about rules for unknown hosts and subsets selecting nothing.
func (b *builder) checkDestinationRules() {
	for _, ns := range sortedKeys(b.m.destRules) {
		for _, d := range b.m.destRules[ns] {
			var matched []*Service
			for _, s := range b.m.services {
				if HostMatches(d.Host, s.Host) {
					matched = append(matched, s)
				}
			}
			if len(matched) == 0 {
				for _, o := range d.Merged {
					b.warn(o, "spec.host", "host %s matches no service in the mesh (IST0174)", d.Host)
				}
				continue
			}
			svc := b.m.serviceByHost[d.Host]
			if svc == nil || len(svc.Ports) == 0 {
				continue
			}
			eps := b.m.endpoints[svc.Host][svc.Ports[0].Number]
			for _, s := range d.Spec.GetSubsets() {
				n := 0
				for _, e := range eps {
					if selects(s.GetLabels(), e.Labels) {
						n++
					}
				}
				if n > 0 {
					continue
				}
				o, idx := subsetOrigin(d, s)
				var have []string
				for _, e := range eps {
					have = append(have, labelString(e.Labels))
				}
				present := "no endpoints"
				if len(have) > 0 {
					present = "endpoint labels: " + joinUnique(have)
				}
				b.warn(o, fmt.Sprintf("spec.subsets[%d].labels", idx),
					"subset %q selects 0 of %d endpoints of %s (wants %s; %s); requests to it get 503 UH no healthy upstream (IST0173)",
					s.GetName(), len(eps), svc.Host, labelString(s.GetLabels()), present)
			}
		}
	}
}

// subsetOrigin finds the object and index that defined a (possibly merged) subset.
func subsetOrigin(d *DestinationRule, s *networkingv1alpha3.Subset) (*config.Object, int) {
	for _, o := range d.Merged {
		for i, x := range o.Spec.(*networkingv1alpha3.DestinationRule).GetSubsets() {
			if x == s {
				return o, i
			}
		}
	}
	return d.Config, 0
}
