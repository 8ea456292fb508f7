package analyze

// AuthorizationPolicy and RequestAuthentication checks: policies selecting nothing
// (IST0127), unknown namespaces in source.namespaces (IST0101), principals of another
// trust domain (LUC0010), requestPrincipals no RequestAuthentication can produce
// (LUC0011), HTTP-only fields that cannot apply to a TCP port (LUC0012), CUSTOM providers
// that make the policy fail closed (LUC0013).

import (
	"fmt"
	"slices"
	"strings"

	securityv1beta1 "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/controlplane/model"
	"github.com/lucid-mesh/lucid/internal/controlplane/translate"
)

// authorization runs the authorization checks.
func (a *analyzer) authorization() []Message {
	var out []Message
	namespaces := a.namespaces()
	for _, ap := range a.m.AuthorizationPolicies() {
		refs := model.TargetRefs(ap.Spec.GetTargetRef(), ap.Spec.GetTargetRefs())
		selected := a.selectedWorkloads(ap.Namespace, ap.Spec.GetSelector(), refs)
		if m, ok := a.selectsNothing(ap.Config, ap.Spec.GetSelector(), refs, selected); ok {
			out = append(out, m)
		}
		out = append(out, unknownNamespaces(ap, namespaces)...)
		out = append(out, a.foreignTrustDomains(ap)...)
		out = append(out, a.requestPrincipalsWithoutJWT(ap, selected)...)
		out = append(out, a.httpFieldsOnTCP(ap, selected)...)
		out = append(out, a.customProvider(ap)...)
	}
	for _, ra := range a.m.RequestAuthentications() {
		refs := model.TargetRefs(ra.Spec.GetTargetRef(), ra.Spec.GetTargetRefs())
		selected := a.selectedWorkloads(ra.Namespace, ra.Spec.GetSelector(), refs)
		if m, ok := a.selectsNothing(ra.Config, ra.Spec.GetSelector(), refs, selected); ok {
			out = append(out, m)
		}
	}
	return out
}

// namespaces are the namespaces the configuration knows (Lucid has no Namespace objects
// in local mode: any object's namespace counts).
func (a *analyzer) namespaces() map[string]bool {
	out := map[string]bool{a.m.RootNamespace(): true}
	for _, o := range a.objs {
		out[o.Namespace] = true
	}
	for _, w := range a.m.Workloads() {
		out[w.Namespace] = true
	}
	return out
}

// selectedWorkloads are the workloads a policy of namespace ns applies to.
func (a *analyzer) selectedWorkloads(ns string, sel *typev1beta1.WorkloadSelector, refs []*typev1beta1.PolicyTargetReference) []*model.Workload {
	var out []*model.Workload
	for _, w := range a.m.Workloads() {
		if a.m.Selects(w, ns, sel, refs) {
			out = append(out, w)
		}
	}
	return out
}

// selectsNothing is Istio's NoMatchingWorkloadsFound (IST0127).
func (a *analyzer) selectsNothing(o *config.Object, sel *typev1beta1.WorkloadSelector, refs []*typev1beta1.PolicyTargetReference, selected []*model.Workload) (Message, bool) {
	if len(selected) > 0 || (o.Namespace == a.m.RootNamespace() && sel == nil && len(refs) == 0) {
		return Message{}, false
	}
	labels := selectorString(sel.GetMatchLabels())
	m := at(o, "IST0127", Warning, "spec.selector", "No matching workloads for this resource with the following labels: "+labels)
	switch {
	case len(refs) > 0:
		m.Field = "spec.targetRefs"
		m.Detail = "no gateway of namespace " + o.Namespace + " has the " + model.GatewayNameLabel + " label the targetRefs name; sidecars ignore targetRef policies"
	case sel != nil && o.Namespace == a.m.RootNamespace():
		m.Detail = "no workload of the mesh has the labels " + labelList(sel.GetMatchLabels())
	case sel != nil:
		m.Detail = fmt.Sprintf("no workload in namespace %s has the labels %s", o.Namespace, labelList(sel.GetMatchLabels()))
	default:
		m.Field = ""
		m.Detail = fmt.Sprintf("namespace %s has no workload: the policy applies to nothing", o.Namespace)
	}
	m.Fix = "correct the selector (or the namespace) to the workload's labels; an AuthorizationPolicy that selects nothing protects nothing"
	return m, true
}

// unknownNamespaces is Istio's check of source.namespaces (IST0101).
func unknownNamespaces(ap *model.AuthzPolicy, known map[string]bool) []Message {
	var out []Message
	for i, r := range ap.Spec.GetRules() {
		for j, f := range r.GetFrom() {
			src := f.GetSource()
			for _, list := range []struct {
				field  string
				values []string
			}{{"namespaces", src.GetNamespaces()}, {"notNamespaces", src.GetNotNamespaces()}} {
				for k, ns := range list.values {
					if namespaceKnown(ns, known) {
						continue
					}
					field := fmt.Sprintf("spec.rules[%d].from[%d].source.%s[%d]", i, j, list.field, k)
					m := at(ap.Config, "IST0101", Error, field, fmt.Sprintf("Referenced namespace not found: %q", ns))
					m.Detail = "no object of the configuration lives in namespace " + ns + ": the condition can never match a caller"
					m.Fix = "correct the namespace name"
					out = append(out, m)
				}
			}
		}
	}
	return out
}

func namespaceKnown(exp string, known map[string]bool) bool {
	for ns := range known {
		switch {
		case exp == "*":
			return true
		case strings.HasPrefix(exp, "*") && strings.HasSuffix(ns, exp[1:]):
			return true
		case strings.HasSuffix(exp, "*") && strings.HasPrefix(ns, exp[:len(exp)-1]):
			return true
		case strings.EqualFold(ns, exp):
			return true
		}
	}
	return false
}

// foreignTrustDomains reports principals whose trust domain is neither the mesh's, one
// of its aliases, nor cluster.local (which Istio maps to the mesh's): no workload of the
// mesh has such an identity (LUC0010).
func (a *analyzer) foreignTrustDomains(ap *model.AuthzPolicy) []Message {
	bundle := append([]string{a.m.TrustDomain(), "cluster.local"}, a.m.TrustDomainAliases()...)
	var out []Message
	check := func(field, principal string) {
		parts := strings.Split(principal, "/")
		if len(parts) != 5 || strings.Contains(parts[0], "*") || slices.Contains(bundle, parts[0]) {
			return
		}
		m := at(ap.Config, "LUC0010", Warning, field, fmt.Sprintf("Principal %q is in trust domain %q, not the mesh's (%s)", principal, parts[0], strings.Join(uniq(bundle), ", ")))
		m.Detail = "mesh workloads' identities are spiffe://" + a.m.TrustDomain() + "/ns/<namespace>/sa/<service account>: this principal matches no workload of the mesh"
		m.Fix = "write the principal as " + a.m.TrustDomain() + "/" + strings.Join(parts[1:], "/") + ", or add " + parts[0] + " to meshConfig.trustDomainAliases"
		out = append(out, m)
	}
	for i, r := range ap.Spec.GetRules() {
		for j, f := range r.GetFrom() {
			for _, list := range []struct {
				field  string
				values []string
			}{{"principals", f.GetSource().GetPrincipals()}, {"notPrincipals", f.GetSource().GetNotPrincipals()}} {
				for k, p := range list.values {
					check(fmt.Sprintf("spec.rules[%d].from[%d].source.%s[%d]", i, j, list.field, k), p)
				}
			}
		}
		for j, w := range r.GetWhen() {
			if w.GetKey() == "source.principal" {
				for k, p := range append(slices.Clone(w.GetValues()), w.GetNotValues()...) {
					check(fmt.Sprintf("spec.rules[%d].when[%d].values[%d]", i, j, k), p)
				}
			}
		}
	}
	return out
}

func uniq(ss []string) []string {
	var out []string
	for _, s := range ss {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// requestPrincipalsWithoutJWT reports rules that need a verified JWT (requestPrincipals,
// request.auth.*) on workloads no RequestAuthentication applies to: no request ever has
// one, so an ALLOW rule never allows and a DENY rule on notRequestPrincipals denies all
// (LUC0011).
func (a *analyzer) requestPrincipalsWithoutJWT(ap *model.AuthzPolicy, selected []*model.Workload) []Message {
	var uncovered []string
	for _, w := range selected {
		p := &model.Proxy{Name: w.Name, Namespace: w.Namespace, Labels: w.Labels}
		if len(a.m.RequestAuthenticationsFor(p)) == 0 {
			uncovered = append(uncovered, w.Namespace+"/"+w.Name)
		}
	}
	if len(uncovered) == 0 {
		return nil
	}
	var out []Message
	for i, r := range ap.Spec.GetRules() {
		field := ""
		for j, f := range r.GetFrom() {
			if len(f.GetSource().GetRequestPrincipals())+len(f.GetSource().GetNotRequestPrincipals()) > 0 {
				field = fmt.Sprintf("spec.rules[%d].from[%d].source.requestPrincipals", i, j)
			}
		}
		for j, w := range r.GetWhen() {
			if strings.HasPrefix(w.GetKey(), "request.auth.") && field == "" {
				field = fmt.Sprintf("spec.rules[%d].when[%d]", i, j)
			}
		}
		if field == "" {
			continue
		}
		m := at(ap.Config, "LUC0011", Warning, field, "The rule needs a verified JWT, but no RequestAuthentication applies to "+strings.Join(uncovered, ", "))
		m.Detail = "without a RequestAuthentication no request carries a verified token there: " + ruleEffect(ap.Spec.GetAction())
		m.Fix = "add a RequestAuthentication (jwtRules with the token's issuer) selecting the same workloads"
		out = append(out, m)
	}
	return out
}

func ruleEffect(action securityv1beta1.AuthorizationPolicy_Action) string {
	switch action {
	case securityv1beta1.AuthorizationPolicy_ALLOW:
		return "the rule never allows a request"
	case securityv1beta1.AuthorizationPolicy_DENY:
		return "requestPrincipals never match, notRequestPrincipals match every request"
	}
	return "the rule's JWT conditions never match"
}

// httpFieldsOnTCP reports rules with HTTP-only fields applied to a workload's TCP port:
// an ALLOW rule is skipped there (it never allows a connection), a DENY or AUDIT rule
// loses the field (it matches more connections), as Istio builds it (LUC0012).
func (a *analyzer) httpFieldsOnTCP(ap *model.AuthzPolicy, selected []*model.Workload) []Message {
	var ports []string
	for _, w := range selected {
		for _, ip := range a.m.InboundPorts(w) {
			if !ip.IsHTTP() {
				ports = append(ports, fmt.Sprintf("%s/%s:%d", w.Namespace, w.Name, ip.Port))
			}
		}
	}
	if len(ports) == 0 {
		return nil
	}
	if ap.Spec.GetAction() == securityv1beta1.AuthorizationPolicy_CUSTOM && !translate.CustomAppliesToTCP(a.m, ap.Spec.GetProvider().GetName()) {
		return nil // an HTTP provider's policies do not apply to TCP ports
	}
	var out []Message
	for _, s := range translate.TCPSkippedRules(a.m, ap) {
		field := fmt.Sprintf("spec.rules[%d]", s.Rule)
		var m Message
		if s.Dropped {
			m = at(ap.Config, "LUC0012", Warning, field, fmt.Sprintf("The rule's HTTP-only field is ignored on TCP port %s: %s", strings.Join(ports, ", "), s.Reason))
			m.Detail = "on a TCP connection Istio drops the field from a " + ap.Spec.GetAction().String() + " rule, so the rule matches every connection its other fields match"
		} else {
			m = at(ap.Config, "LUC0012", Warning, field, fmt.Sprintf("The rule never allows connections to TCP port %s: %s", strings.Join(ports, ", "), s.Reason))
			m.Detail = "on a TCP connection Istio skips an ALLOW rule with an HTTP-only field (hosts, methods, paths, requestPrincipals, request headers, request.auth.*)"
		}
		m.Fix = "limit the rule to the HTTP ports with to.operation.ports, or write a separate rule for the TCP port without HTTP fields"
		out = append(out, m)
	}
	return out
}

// customProvider reports CUSTOM policies that cannot call their provider: Lucid (as Istio)
// then denies what they match (LUC0013).
func (a *analyzer) customProvider(ap *model.AuthzPolicy) []Message {
	if ap.Spec.GetAction() != securityv1beta1.AuthorizationPolicy_CUSTOM {
		return nil
	}
	if ap.DryRun {
		m := at(ap.Config, "LUC0013", Warning, "metadata.annotations", "istio.io/dry-run is not supported for CUSTOM policies: Lucid ignores this policy")
		m.Fix = "remove the annotation to enforce the policy, or delete the policy"
		return []Message{m}
	}
	name := ap.Spec.GetProvider().GetName()
	if err := translate.ExtensionProviderError(a.m, name); err != nil {
		m := at(ap.Config, "LUC0013", Error, "spec.provider.name", fmt.Sprintf("Extension provider %q cannot be used: %v", name, err))
		m.Detail = "requests this policy matches are denied (403, policy ...-deny-due-to-bad-CUSTOM-action) until the provider works"
		m.Fix = "define the provider in meshConfig.extensionProviders (envoyExtAuthzHttp with a service of the registry and its port)"
		return []Message{m}
	}
	return nil
}
