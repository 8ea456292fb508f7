package analyze

import (
	"fmt"
	"slices"
	"strings"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// Lucid's own checks, for what Istio has no code for: LUC0001 (workloads without app or
// version label), LUC0002 (weight-0 destinations), LUC0004 (retries that replay requests
// the upstream may have processed), LUC0008 (ServiceEntry ports without protocol), and the
// model's other warnings (LUC0000).
func (a *analyzer) lucidChecks() {
	a.workloadLabels()
	for _, o := range a.kind(config.KindVirtualService) {
		if vs := virtualService(o); vs != nil {
			a.zeroWeights(o, vs)
			a.unsafeRetries(o, vs)
		}
	}
	a.serviceEntryProtocols()
	a.modelWarnings()
}

// workloadLabels is LUC0001: a WorkloadEntry without the app or version label.
func (a *analyzer) workloadLabels() {
	for _, o := range a.kind(config.KindWorkloadEntry) {
		we, ok := o.Spec.(*networkingv1alpha3.WorkloadEntry)
		if !ok || o.Annotations[model.ProxyAnnotation] == model.ProxyRouter {
			continue // a gateway is no service's version: Istio's ingress gateway has none either
		}
		var missing []string
		for _, k := range []string{"app", "version"} {
			if _, ok := we.GetLabels()[k]; !ok {
				missing = append(missing, k)
			}
		}
		if len(missing) == 0 {
			continue
		}
		what := "no " + strings.Join(missing, " and no ") + " label"
		m := a.reportf(o, "LUC0001", Warning, "spec.labels",
			"WorkloadEntry %s has %s: DestinationRule subsets and telemetry (app, version; destination_version) rely on them", o.Name, what)
		m.Detail = "labels: " + labelList(we.GetLabels())
		var add []string
		for _, k := range missing {
			add = append(add, k+": <"+k+">")
		}
		m.Fix = "add `" + strings.Join(add, ", ") + "` to spec.labels"
	}
}

// zeroWeights is LUC0002: a weighted destination with weight 0 among several.
func (a *analyzer) zeroWeights(o *config.Object, vs *networkingv1alpha3.VirtualService) {
	for i, r := range vs.GetHttp() {
		rs := r.GetRoute()
		if len(rs) < 2 {
			continue
		}
		for j, rd := range rs {
			if rd.GetWeight() != 0 {
				continue
			}
			target := rd.GetDestination().GetHost()
			if s := rd.GetDestination().GetSubset(); s != "" {
				target += " subset " + s
			}
			m := a.reportf(o, "LUC0002", Warning, fmt.Sprintf("spec.http[%d].route[%d].weight", i, j),
				"%s gets no traffic from this route: its weight is 0 while the route has %d destinations", target, len(rs))
			m.Fix = "give it a weight above 0 (the weights of a route add up to 100), or remove the destination"
		}
	}
}

// unsafeRetryOn are retryOn conditions under which the upstream may have processed the
// request already.
var unsafeRetryOn = []string{"5xx", "gateway-error", "reset", "retriable-status-codes", "retriable-4xx", "unavailable", "internal", "deadline-exceeded"}

// safeMethods are the methods a retried request may repeat (net/http's isReplayable).
var safeMethods = map[string]bool{"GET": true, "HEAD": true, "OPTIONS": true, "TRACE": true}

// unsafeRetries is LUC0004: a retry policy that replays requests the upstream may have
// processed, on a route that accepts non-idempotent methods.
func (a *analyzer) unsafeRetries(o *config.Object, vs *networkingv1alpha3.VirtualService) {
	for i, r := range vs.GetHttp() {
		rt := r.GetRetries()
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
		why, ok := acceptsUnsafe(r)
		if !ok {
			continue
		}
		m := a.reportf(o, "LUC0004", Warning, fmt.Sprintf("spec.http[%d].retries.retryOn", i),
			"retries.retryOn %q replays requests the upstream may already have processed (%s), and this route accepts %s: a POST can run twice",
			rt.GetRetryOn(), strings.Join(bad, ", "), why)
		m.Fix = "retry only what never reached the app (retryOn: connect-failure,refused-stream), or give this retry policy a route that matches only GET/HEAD"
	}
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

// serviceEntryProtocols is LUC0008: a ServiceEntry port without protocol. Lucid sniffs it
// per connection as Istio does (captured outbound, inbound), but the explicit proxy of local
// mode routes it as HTTP, which breaks a TCP service (a database) reached that way.
func (a *analyzer) serviceEntryProtocols() {
	for _, o := range a.kind(config.KindServiceEntry) {
		se, ok := o.Spec.(*networkingv1alpha3.ServiceEntry)
		if !ok {
			continue
		}
		for i, p := range se.GetPorts() {
			if p.GetProtocol() != "" {
				continue
			}
			m := a.reportf(o, "LUC0008", Info, fmt.Sprintf("spec.ports[%d]", i),
				"Port %s (%d) has no protocol: it is sniffed per connection (HTTP or TCP), as in Istio, but the explicit proxy of local mode routes it as HTTP", p.GetName(), p.GetNumber())
			m.Fix = "set protocol (HTTP, HTTP2, GRPC, TLS, TCP, ...)"
		}
	}
}
