package analyze

// Lucid's AuthorizationPolicy checks beside Istio's (authz.go): principals of another
// trust domain (LUC0010), requestPrincipals no RequestAuthentication can produce
// (LUC0011), HTTP-only fields that cannot apply to a TCP port (LUC0012), CUSTOM providers
// that make the policy fail closed (LUC0013), paths no request's path can match (LUC0017).

import (
	"fmt"
	"slices"
	"strings"

	securityv1beta1 "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
	"github.com/lucid-mesh/lucid/internal/controlplane/translate"
)

// authorizationLucid runs Lucid's own authorization checks.
func (a *analyzer) authorizationLucid() {
	if a.m == nil {
		return
	}
	for _, ap := range a.m.AuthorizationPolicies() {
		refs := model.TargetRefs(ap.Spec.GetTargetRef(), ap.Spec.GetTargetRefs())
		selected := a.selectedWorkloads(ap.Namespace, ap.Spec.GetSelector(), refs)
		a.foreignTrustDomains(ap)
		a.requestPrincipalsWithoutJWT(ap, selected)
		a.httpFieldsOnTCP(ap, selected)
		a.customProvider(ap)
		a.unmatchablePaths(ap)
	}
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

// foreignTrustDomains reports principals whose trust domain is neither the mesh's, one
// of its aliases, nor cluster.local (which Istio maps to the mesh's): no workload of the
// mesh has such an identity (LUC0010).
func (a *analyzer) foreignTrustDomains(ap *model.AuthzPolicy) {
	bundle := append([]string{a.m.TrustDomain(), "cluster.local"}, a.m.TrustDomainAliases()...)
	check := func(field, principal string) {
		parts := strings.Split(principal, "/")
		if len(parts) != 5 || strings.Contains(parts[0], "*") || slices.Contains(bundle, parts[0]) {
			return
		}
		m := a.report(ap.Config, "LUC0010", Warning, field, fmt.Sprintf("Principal %q is in trust domain %q, not the mesh's (%s)", principal, parts[0], strings.Join(uniq(bundle), ", ")))
		m.Detail = "mesh workloads' identities are spiffe://" + a.m.TrustDomain() + "/ns/<namespace>/sa/<service account>: this principal matches no workload of the mesh"
		m.Fix = "write the principal as " + a.m.TrustDomain() + "/" + strings.Join(parts[1:], "/") + ", or add " + parts[0] + " to meshConfig.trustDomainAliases"
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
func (a *analyzer) requestPrincipalsWithoutJWT(ap *model.AuthzPolicy, selected []*model.Workload) {
	var uncovered []string
	for _, w := range selected {
		p := &model.Proxy{Name: w.Name, Namespace: w.Namespace, Labels: w.Labels}
		if len(a.m.RequestAuthenticationsFor(p)) == 0 {
			uncovered = append(uncovered, w.Namespace+"/"+w.Name)
		}
	}
	if len(uncovered) == 0 {
		return
	}
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
		m := a.report(ap.Config, "LUC0011", Warning, field, "The rule needs a verified JWT, but no RequestAuthentication applies to "+strings.Join(uncovered, ", "))
		m.Detail = "without a RequestAuthentication no request carries a verified token there: " + ruleEffect(ap.Spec.GetAction())
		m.Fix = "add a RequestAuthentication (jwtRules with the token's issuer) selecting the same workloads"
	}
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
func (a *analyzer) httpFieldsOnTCP(ap *model.AuthzPolicy, selected []*model.Workload) {
	var ports []string
	for _, w := range selected {
		for _, ip := range a.m.InboundPorts(w) {
			if !ip.IsHTTP() {
				ports = append(ports, fmt.Sprintf("%s/%s:%d", w.Namespace, w.Name, ip.Port))
			}
		}
	}
	if len(ports) == 0 {
		return
	}
	if ap.Spec.GetAction() == securityv1beta1.AuthorizationPolicy_CUSTOM && !translate.CustomAppliesToTCP(a.m, ap.Spec.GetProvider().GetName()) {
		return // an HTTP provider's policies do not apply to TCP ports
	}
	for _, s := range translate.TCPSkippedRules(a.m, ap) {
		field := fmt.Sprintf("spec.rules[%d]", s.Rule)
		var m *Message
		if s.Dropped {
			m = a.report(ap.Config, "LUC0012", Warning, field, fmt.Sprintf("The rule's HTTP-only field is ignored on TCP port %s: %s", strings.Join(ports, ", "), s.Reason))
			m.Detail = "on a TCP connection Istio drops the field from a " + ap.Spec.GetAction().String() + " rule, so the rule matches every connection its other fields match"
		} else {
			m = a.report(ap.Config, "LUC0012", Warning, field, fmt.Sprintf("The rule never allows connections to TCP port %s: %s", strings.Join(ports, ", "), s.Reason))
			m.Detail = "on a TCP connection Istio skips an ALLOW rule with an HTTP-only field (hosts, methods, paths, requestPrincipals, request headers, request.auth.*)"
		}
		m.Fix = "limit the rule to the HTTP ports with to.operation.ports, or write a separate rule for the TCP port without HTTP fields"
	}
}

// customProvider reports CUSTOM policies that cannot call their provider: Lucid (as Istio)
// then denies what they match (LUC0013).
func (a *analyzer) customProvider(ap *model.AuthzPolicy) {
	if ap.Spec.GetAction() != securityv1beta1.AuthorizationPolicy_CUSTOM {
		return
	}
	if ap.DryRun {
		m := a.report(ap.Config, "LUC0013", Warning, "metadata.annotations", "istio.io/dry-run is not supported for CUSTOM policies: Lucid ignores this policy")
		m.Fix = "remove the annotation to enforce the policy, or delete the policy"
		return
	}
	name := ap.Spec.GetProvider().GetName()
	if err := translate.ExtensionProviderError(a.m, name); err != nil {
		m := a.report(ap.Config, "LUC0013", Error, "spec.provider.name", fmt.Sprintf("Extension provider %q cannot be used: %v", name, err))
		m.Detail = "requests this policy matches are denied (403, policy ...-deny-due-to-bad-CUSTOM-action) until the provider works"
		m.Fix = "define the provider in meshConfig.extensionProviders (envoyExtAuthzHttp with a service of the registry and its port)"
	}
}

// unmatchablePaths reports paths and notPaths values that no request's path matches: a
// path as the proxy matches it always starts with '/' (the query left out), so a value
// that starts with anything but '/', a '*' wildcard or a {**} template never matches it
// ("api/users", "api/*", "{*}/users"). Istio accepts such values and builds them as
// written (LUC0017).
func (a *analyzer) unmatchablePaths(ap *model.AuthzPolicy) {
	for i, r := range ap.Spec.GetRules() {
		for j, t := range r.GetTo() {
			op := t.GetOperation()
			for _, f := range []struct {
				name   string
				values []string
			}{{"paths", op.GetPaths()}, {"notPaths", op.GetNotPaths()}} {
				for k, v := range f.values {
					if v == "" || strings.HasPrefix(v, "/") || strings.HasPrefix(v, "*") || strings.HasPrefix(v, "{**}") {
						continue
					}
					field := fmt.Sprintf("spec.rules[%d].to[%d].operation.%s[%d]", i, j, f.name, k)
					m := a.report(ap.Config, "LUC0017", Warning, field, fmt.Sprintf("Path %q does not start with '/': it matches no request", v))
					m.Detail = unmatchablePathEffect(ap.Spec.GetAction(), f.name == "notPaths")
					m.Fix = fmt.Sprintf("write it as %q", "/"+v)
				}
			}
		}
	}
}

// unmatchablePathEffect says what a path value that matches nothing does to a rule of
// action, in paths or (not) in notPaths.
func unmatchablePathEffect(action securityv1beta1.AuthorizationPolicy_Action, not bool) string {
	if not {
		return "every request's path is not this value, so it excludes nothing: the rule matches the requests it was meant to leave out"
	}
	switch action {
	case securityv1beta1.AuthorizationPolicy_ALLOW:
		return "a request's path always starts with '/': this value allows no request"
	case securityv1beta1.AuthorizationPolicy_DENY:
		return "a request's path always starts with '/': this value denies no request"
	}
	return "a request's path always starts with '/': this value selects no request"
}
