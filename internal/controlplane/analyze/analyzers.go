package analyze

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

func labelList(l map[string]string) string {
	if len(l) == 0 {
		return "(none)"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(l)) {
		parts = append(parts, k+"="+l[k])
	}
	return strings.Join(parts, ", ")
}

// serviceWorkloads returns the workloads a service selects (nil for services with inline
// endpoints).
func (a *analyzer) serviceWorkloads(svc *model.Service) []*model.Workload {
	if svc.Selector == nil {
		return nil
	}
	var out []*model.Workload
	for _, w := range a.m.Workloads() {
		if w.Namespace == svc.Namespace && subsetOf(svc.Selector, w.Labels) {
			out = append(out, w)
		}
	}
	return out
}

func subsetOf(sel, labels map[string]string) bool {
	for k, v := range sel {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// subsetsSelectNothing is IST0173: a DestinationRule subset whose labels (with the
// service's selector) select no workload of the service.
func (a *analyzer) subsetsSelectNothing() []Message {
	var out []Message
	for _, o := range a.kind(config.KindDestinationRule) {
		dr := o.Spec.(*networkingv1alpha3.DestinationRule)
		host := model.ResolveHost(dr.GetHost(), o.Namespace)
		svc := a.m.Service(host)
		if svc == nil {
			continue // IST0174, or a wildcard host
		}
		wls := a.serviceWorkloads(svc)
		var inline []map[string]string
		if svc.Selector == nil && len(svc.Ports) > 0 {
			for _, e := range a.m.Endpoints(host, svc.Ports[0].Number) {
				inline = append(inline, e.Labels)
			}
		}
		for i, s := range dr.GetSubsets() {
			want := s.GetLabels()
			n := 0
			for _, w := range wls {
				if subsetOf(want, w.Labels) {
					n++
				}
			}
			for _, l := range inline {
				if subsetOf(want, l) {
					n++
				}
			}
			if n > 0 {
				continue
			}
			m := at(o, "IST0173", Error, fmt.Sprintf("spec.subsets[%d].labels", i),
				fmt.Sprintf("The Subset %s defined in the DestinationRule does not select any pods. Which may lead to 503 UH (NoHealthyUpstream).", s.GetName()))
			m.Detail, m.Fix = explainSubset(s, svc, wls, inline)
			out = append(out, m)
		}
	}
	return out
}

// explainSubset says which labels the subset wants and which labels the service's
// workloads have, and proposes the smallest fix.
func explainSubset(s *networkingv1alpha3.Subset, svc *model.Service, wls []*model.Workload, inline []map[string]string) (detail, fix string) {
	want := s.GetLabels()
	lines := []string{fmt.Sprintf("subset %s wants %s; service %s has %d workloads", s.GetName(), labelList(want), svc.Host, len(wls)+len(inline))}
	if svc.Selector != nil {
		lines[0] = fmt.Sprintf("subset %s wants %s (with the service's selector %s); service %s has %d workloads",
			s.GetName(), labelList(want), labelList(svc.Selector), svc.Host, len(wls))
	}
	keys := slices.Sorted(maps.Keys(want))
	bestMissing, best, bestWhy := -1, "", ""
	for _, w := range wls {
		var have, missing, differ []string
		for _, k := range slices.Sorted(maps.Keys(svc.Selector)) {
			have = append(have, k+"="+w.Labels[k])
		}
		for _, k := range keys {
			v, ok := w.Labels[k]
			switch {
			case !ok:
				missing = append(missing, "no "+k+" label")
			case v != want[k]:
				differ = append(differ, k+"="+v)
			}
		}
		desc := "WorkloadEntry " + w.Name + " has "
		if len(have) > 0 {
			desc += strings.Join(have, ", ") + " but "
		}
		desc += strings.Join(append(differ, missing...), " and ")
		lines = append(lines, desc)
		if len(differ) == 0 && len(missing) > 0 && (bestMissing < 0 || len(missing) < bestMissing) {
			bestMissing, best, bestWhy = len(missing), w.Name, strings.Join(missing, " and ")
		}
	}
	for i, l := range inline {
		lines = append(lines, fmt.Sprintf("endpoint #%d has %s", i+1, labelList(l)))
	}
	if len(wls) == 0 && len(inline) == 0 {
		lines = append(lines, "no workload matches the service's selector "+labelList(svc.Selector))
	}
	var add []string
	for _, k := range keys {
		add = append(add, k+": "+want[k])
	}
	switch {
	case best != "":
		fix = fmt.Sprintf("add `%s` to the labels of WorkloadEntry %s (it has %s), or remove subset %s if nothing should serve it", strings.Join(add, ", "), best, bestWhy, s.GetName())
	default:
		fix = fmt.Sprintf("label the workloads meant for subset %s with `%s`, or correct the subset's labels", s.GetName(), strings.Join(add, ", "))
	}
	return strings.Join(lines, "\n"), fix
}

// unknownDestinationRuleHosts is IST0174.
func (a *analyzer) unknownDestinationRuleHosts() []Message {
	var out []Message
	for _, o := range a.kind(config.KindDestinationRule) {
		dr := o.Spec.(*networkingv1alpha3.DestinationRule)
		host := model.ResolveHost(dr.GetHost(), o.Namespace)
		found := false
		for _, s := range a.m.Services() {
			if model.HostMatches(host, s.Host) {
				found = true
				break
			}
		}
		if found {
			continue
		}
		m := at(o, "IST0174", Warning, "spec.host",
			fmt.Sprintf("The host %s defined in the DestinationRule does not match any services in the mesh.", dr.GetHost()))
		m.Detail = fmt.Sprintf("%s resolves to %s, which no ServiceEntry defines", dr.GetHost(), host)
		m.Fix = "correct spec.host (a short name resolves in the rule's namespace), or add the ServiceEntry"
		out = append(out, m)
	}
	return out
}

// destinations calls f for every destination of a VirtualService's http routes.
func eachDestination(v *model.VirtualService, f func(r model.HTTPRoute, field string, d *networkingv1alpha3.Destination, weight int32, n int)) {
	for _, r := range v.HTTP {
		rs := r.Route.GetRoute()
		for j, d := range rs {
			f(r, fmt.Sprintf("%s.route[%d].destination", r.Field, j), d.GetDestination(), d.GetWeight(), len(rs))
		}
		if mr := r.Route.GetMirror(); mr != nil {
			f(r, r.Field+".mirror", mr, -1, 0)
		}
	}
}

// referencedNotFound is IST0101: a destination host that is not in the registry, or a
// host+subset no DestinationRule defines.
func (a *analyzer) referencedNotFound() []Message {
	var out []Message
	for _, v := range a.m.VirtualServices() {
		eachDestination(v, func(r model.HTTPRoute, field string, d *networkingv1alpha3.Destination, _ int32, _ int) {
			o := r.Source
			host := model.ResolveHost(d.GetHost(), o.Namespace)
			if a.m.Service(host) == nil {
				m := at(o, "IST0101", Error, field+".host", fmt.Sprintf("Referenced host not found: %q", d.GetHost()))
				m.Detail = fmt.Sprintf("%s resolves to %s, which is not in the service registry: requests get 503 NC (cluster_not_found), or leave the mesh under ALLOW_ANY", d.GetHost(), host)
				m.Fix = "correct the host, or add a ServiceEntry for it"
				out = append(out, m)
				return
			}
			if d.GetSubset() == "" {
				return
			}
			dr := a.m.DestinationRule(o.Namespace, nil, host)
			if dr.Subset(d.GetSubset()) != nil {
				return
			}
			m := at(o, "IST0101", Error, field+".subset",
				fmt.Sprintf("Referenced host+subset in destinationrule not found: %q", d.GetHost()+"+"+d.GetSubset()))
			if dr == nil {
				m.Detail = fmt.Sprintf("no DestinationRule applies to %s; requests routed here get 503 NC (cluster_not_found)", host)
				m.Fix = fmt.Sprintf("add a DestinationRule for %s defining subset %s", host, d.GetSubset())
			} else {
				var names []string
				for _, s := range dr.Spec.GetSubsets() {
					names = append(names, s.GetName())
				}
				m.Detail = fmt.Sprintf("DestinationRule %s.%s defines subsets [%s], not %s; requests routed here get 503 NC (cluster_not_found)",
					dr.Config.Name, dr.Config.Namespace, strings.Join(names, ", "), d.GetSubset())
				m.Fix = fmt.Sprintf("add subset %s to DestinationRule %s.%s, or route to one of its subsets", d.GetSubset(), dr.Config.Name, dr.Config.Namespace)
			}
			out = append(out, m)
		})
	}
	return out
}

// knownProtocols are the port name prefixes Istio understands (ConvertProtocol).
var knownProtocols = map[string]bool{
	"http": true, "http2": true, "https": true, "grpc": true, "grpc-web": true, "tcp": true,
	"tls": true, "udp": true, "mongo": true, "redis": true, "mysql": true,
}

// portNames is IST0118: a port without a protocol whose name does not say one.
func (a *analyzer) portNames() []Message {
	var out []Message
	for _, o := range a.kind(config.KindServiceEntry) {
		se := o.Spec.(*networkingv1alpha3.ServiceEntry)
		for i, p := range se.GetPorts() {
			if p.GetProtocol() != "" {
				continue
			}
			name := strings.ToLower(p.GetName())
			prefix, _, _ := strings.Cut(name, "-")
			if strings.HasPrefix(name, "grpc-web") {
				prefix = "grpc-web"
			}
			if knownProtocols[prefix] {
				continue
			}
			target := ""
			if p.GetTargetPort() != 0 {
				target = strconv.Itoa(int(p.GetTargetPort()))
			}
			m := at(o, "IST0118", Info, fmt.Sprintf("spec.ports[%d].name", i),
				fmt.Sprintf("Port name %s (port: %d, targetPort: %s) doesn't follow the naming convention of Istio port.", p.GetName(), p.GetNumber(), target))
			m.Fix = "set protocol, or name the port <protocol>[-<suffix>] (http-web, grpc, tcp-db); otherwise the protocol is sniffed"
			out = append(out, m)
		}
	}
	return out
}

// workloadLabels is LUC0001: a workload without the app or version label.
func (a *analyzer) workloadLabels() []Message {
	var out []Message
	for _, w := range a.m.Workloads() {
		if w.Config.Annotations[model.ProxyAnnotation] == model.ProxyRouter {
			continue // a gateway is no service's version: Istio's ingress gateway has none either
		}
		var missing []string
		for _, k := range []string{"app", "version"} {
			if _, ok := w.Labels[k]; !ok {
				missing = append(missing, k)
			}
		}
		if len(missing) == 0 {
			continue
		}
		what := "no " + strings.Join(missing, " and no ") + " label"
		m := at(w.Config, "LUC0001", Warning, "spec.labels",
			fmt.Sprintf("WorkloadEntry %s has %s: DestinationRule subsets and telemetry (app, version; destination_version) rely on them", w.Name, what))
		m.Detail = "labels: " + labelList(w.Labels)
		var add []string
		for _, k := range missing {
			add = append(add, k+": <"+k+">")
		}
		m.Fix = "add `" + strings.Join(add, ", ") + "` to spec.labels"
		out = append(out, m)
	}
	return out
}

// unreachable finds routes no request can reach: rules after a rule without match
// (IST0130, Istio's VirtualServiceUnreachableRule) and weighted destinations with weight 0
// (LUC0002).
func (a *analyzer) unreachable() []Message {
	var out []Message
	for _, v := range a.m.VirtualServices() {
		catchAll := -1
		for i, r := range v.HTTP {
			if catchAll >= 0 {
				m := at(r.Source, "IST0130", Warning, r.Field,
					fmt.Sprintf("VirtualService rule #%d not used (only the last rule can have no matches).", i))
				m.Detail = fmt.Sprintf("rule #%d (%s) matches every request, so later rules never apply", catchAll, v.HTTP[catchAll].Field)
				m.Fix = "move the rule without match to the end, or give it a match"
				out = append(out, m)
				continue
			}
			if len(r.Route.GetMatch()) == 0 {
				catchAll = i
			}
		}
		eachDestination(v, func(r model.HTTPRoute, field string, d *networkingv1alpha3.Destination, weight int32, n int) {
			if n < 2 || weight != 0 {
				return
			}
			target := d.GetHost()
			if d.GetSubset() != "" {
				target += " subset " + d.GetSubset()
			}
			m := at(r.Source, "LUC0002", Warning, strings.TrimSuffix(field, ".destination")+".weight",
				fmt.Sprintf("%s gets no traffic from this route: its weight is 0 while the route has %d destinations", target, n))
			m.Fix = "give it a weight above 0 (the weights of a route add up to 100), or remove the destination"
			out = append(out, m)
		})
	}
	return out
}

// shadowedVirtualServices is LUC0003: a VirtualService for a host another VirtualService
// already routes for sidecars (only the first, by creation order, applies).
func (a *analyzer) shadowedVirtualServices() []Message {
	var out []Message
	for _, v := range a.m.VirtualServices() {
		if !v.ForSidecars() {
			continue
		}
		for i, h := range v.Hosts {
			if strings.HasPrefix(h, "*") {
				continue
			}
			win := a.m.VirtualServiceFor(v.Config.Namespace, h)
			if win == nil || win == v || !slices.Contains(win.Hosts, h) {
				continue
			}
			m := at(v.Config, "LUC0003", Warning, fmt.Sprintf("spec.hosts[%d]", i),
				fmt.Sprintf("VirtualService %s.%s is shadowed for host %s by VirtualService %s.%s: sidecars apply one VirtualService per host, the first created",
					v.Config.Name, v.Config.Namespace, h, win.Config.Name, win.Config.Namespace))
			m.Detail = fmt.Sprintf("%s's routes for %s never apply", v.Config.Name, h)
			m.Fix = fmt.Sprintf("merge its http routes into VirtualService %s.%s, or use delegation", win.Config.Name, win.Config.Namespace)
			out = append(out, m)
		}
	}
	return out
}

// unsafeRetryOn are retryOn conditions under which the upstream may have processed the
// request already.
var unsafeRetryOn = []string{"5xx", "gateway-error", "reset", "retriable-status-codes", "retriable-4xx", "unavailable", "internal", "deadline-exceeded"}

// safeMethods are the methods a retried request may repeat (net/http's isReplayable).
var safeMethods = map[string]bool{"GET": true, "HEAD": true, "OPTIONS": true, "TRACE": true}

// unsafeRetries is LUC0004: a retry policy that replays requests the upstream may have
// processed, on a route that accepts non-idempotent methods.
func (a *analyzer) unsafeRetries() []Message {
	var out []Message
	for _, v := range a.m.VirtualServices() {
		for _, r := range v.HTTP {
			rt := r.Route.GetRetries()
			if rt == nil || rt.GetAttempts() == 0 {
				continue
			}
			var bad []string
			for c := range strings.SplitSeq(rt.GetRetryOn(), ",") {
				if c = strings.TrimSpace(c); slices.Contains(unsafeRetryOn, c) {
					bad = append(bad, c)
				}
			}
			if len(bad) == 0 {
				continue
			}
			why, ok := acceptsUnsafe(r.Route)
			if !ok {
				continue
			}
			m := at(r.Source, "LUC0004", Warning, r.Field+".retries.retryOn",
				fmt.Sprintf("retries.retryOn %q replays requests the upstream may already have processed (%s), and this route accepts %s: a POST can run twice",
					rt.GetRetryOn(), strings.Join(bad, ", "), why))
			m.Fix = "retry only what never reached the app (retryOn: connect-failure,refused-stream), or give this retry policy a route that matches only GET/HEAD"
			out = append(out, m)
		}
	}
	return out
}

// acceptsUnsafe says whether a route accepts a non-idempotent method, and how.
func acceptsUnsafe(r *networkingv1alpha3.HTTPRoute) (string, bool) {
	if len(r.GetMatch()) == 0 {
		return "every method (no match)", true
	}
	for _, mr := range r.GetMatch() {
		m := mr.GetMethod()
		if m == nil {
			return "every method (a match without method)", true
		}
		if ex := m.GetExact(); ex != "" && !safeMethods[strings.ToUpper(ex)] {
			return "method " + ex, true
		}
		if m.GetRegex() != "" || m.GetPrefix() != "" {
			return "methods matching " + m.String(), true
		}
	}
	return "", false
}
