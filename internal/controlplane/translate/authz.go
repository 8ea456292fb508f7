package translate

// AuthorizationPolicy and RequestAuthentication as the Envoy filters Istio generates
// (pilot/pkg/security/authz/builder, pilot/pkg/security/authn): on an inbound HTTP chain
// the CUSTOM action's RBAC (shadow) and ext_authz filters, jwt_authn, then one RBAC filter
// each for AUDIT (LOG), DENY and ALLOW; on a TCP chain the network RBAC filters. Dry-run
// policies (istio.io/dry-run) go into the filters' shadow rules.

import (
	"fmt"
	"slices"

	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacpb "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	rbachttppb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	rbactcppb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// Filter names and Istio's stat prefixes.
const (
	RBACHTTPFilter          = "envoy.filters.http.rbac"
	RBACNetworkFilter       = "envoy.filters.network.rbac"
	ExtAuthzHTTPFilter      = "envoy.filters.http.ext_authz"
	ExtAuthzNetworkFilter   = "envoy.filters.network.ext_authz"
	rbacTCPStatPrefix       = "tcp."
	dryRunAllowStatPrefix   = "istio_dry_run_allow_"
	dryRunDenyStatPrefix    = "istio_dry_run_deny_"
	extAuthzShadowPrefix    = "istio_ext_authz_"
	extAuthzMatchPrefix     = "istio-ext-authz"
	badCustomActionSuffix   = "-deny-due-to-bad-CUSTOM-action"
	shadowEffectivePolicyID = "shadow_effective_policy_id"
)

// deterministicAny packs m with maps in key order (RBAC policies, JWT providers), so the
// same policies give the same bytes and snapshots hash stably.
func deterministicAny(m proto.Message) *anypb.Any {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		panic("translate: marshal " + string(m.ProtoReflect().Descriptor().FullName()) + ": " + err.Error())
	}
	return &anypb.Any{TypeUrl: "type.googleapis.com/" + string(m.ProtoReflect().Descriptor().FullName()), Value: b}
}

// rbacPolicyMatchNever is Istio's policy for an ALLOW policy without rules: it matches
// nothing.
func rbacPolicyMatchNever() *rbacpb.Policy {
	return &rbacpb.Policy{
		Permissions: []*rbacpb.Permission{{Rule: &rbacpb.Permission_NotRule{NotRule: permAny()}}},
		Principals:  []*rbacpb.Principal{{Identifier: &rbacpb.Principal_NotId{NotId: princAny()}}},
	}
}

// inboundAuthHTTPFilters are the authentication and authorization http filters of the
// proxy's inbound HTTP chains, before the router (empty when no policy applies).
func (g *generator) inboundAuthHTTPFilters() []*hcmpb.HttpFilter {
	return AuthHTTPFilters(g.m, g.p)
}

// inboundAuthTCPFilters are the network filters of the proxy's inbound TCP chains, before
// tcp_proxy.
func (g *generator) inboundAuthTCPFilters() []*listenerpb.Filter {
	return AuthTCPFilters(g.m, g.p)
}

// AuthHTTPFilters are the http filters Istio puts before the router of proxy p's inbound
// (sidecar) or gateway HTTP connection managers for the policies that apply to p:
// CUSTOM (RBAC shadow + ext_authz per provider), jwt_authn, AUDIT, DENY, ALLOW.
func AuthHTTPFilters(m *model.Mesh, p *model.Proxy) []*hcmpb.HttpFilter {
	pp := m.PoliciesFor(p)
	var out []*hcmpb.HttpFilter
	out = append(out, customHTTPFilters(m, pp.Custom)...) // authz_extauthz.go
	if f := jwtFilter(m, m.RequestAuthenticationsFor(p)); f != nil {
		out = append(out, f) // authn_jwt.go
	}
	b := authzBuilder{bundle: trustBundle(m)}
	for _, a := range []struct {
		policies []*model.AuthzPolicy
		action   rbacpb.RBAC_Action
	}{{pp.Audit, rbacpb.RBAC_LOG}, {pp.Deny, rbacpb.RBAC_DENY}, {pp.Allow, rbacpb.RBAC_ALLOW}} {
		if r := b.build(a.policies, a.action, false, ""); r != nil {
			out = append(out, &hcmpb.HttpFilter{Name: RBACHTTPFilter, ConfigType: &hcmpb.HttpFilter_TypedConfig{TypedConfig: deterministicAny(&rbachttppb.RBAC{
				Rules: r.rules, ShadowRules: r.shadow, ShadowRulesStatPrefix: shadowStatPrefix(r.shadow),
			})}})
		}
	}
	return out
}

// AuthTCPFilters are the network filters before tcp_proxy on proxy p's inbound TCP
// chains: CUSTOM with a gRPC provider (RBAC shadow + ext_authz), AUDIT, DENY, ALLOW.
// HTTP-only fields cannot match a connection: an ALLOW rule with one is skipped (it never
// allows), a DENY or AUDIT rule loses the field (it matches more), as Istio does.
func AuthTCPFilters(m *model.Mesh, p *model.Proxy) []*listenerpb.Filter {
	pp := m.PoliciesFor(p)
	var out []*listenerpb.Filter
	out = append(out, customTCPFilters(m, pp.Custom)...)
	b := authzBuilder{bundle: trustBundle(m)}
	for _, a := range []struct {
		policies []*model.AuthzPolicy
		action   rbacpb.RBAC_Action
	}{{pp.Audit, rbacpb.RBAC_LOG}, {pp.Deny, rbacpb.RBAC_DENY}, {pp.Allow, rbacpb.RBAC_ALLOW}} {
		if r := b.build(a.policies, a.action, true, ""); r != nil {
			out = append(out, &listenerpb.Filter{Name: RBACNetworkFilter, ConfigType: &listenerpb.Filter_TypedConfig{TypedConfig: deterministicAny(&rbactcppb.RBAC{
				Rules: r.rules, StatPrefix: rbacTCPStatPrefix, ShadowRules: r.shadow, ShadowRulesStatPrefix: shadowStatPrefix(r.shadow),
			})}})
		}
	}
	return out
}

// trustBundle is the mesh's trust domain followed by its aliases.
func trustBundle(m *model.Mesh) []string {
	return append([]string{m.TrustDomain()}, m.TrustDomainAliases()...)
}

func shadowStatPrefix(r *rbacpb.RBAC) string {
	switch {
	case r == nil:
		return ""
	case r.Action == rbacpb.RBAC_ALLOW:
		return dryRunAllowStatPrefix
	case r.Action == rbacpb.RBAC_DENY:
		return dryRunDenyStatPrefix
	}
	return ""
}

// authzBuilder turns policies into RBAC configs.
type authzBuilder struct {
	bundle []string
}

// builtRBAC is one action's enforced and dry-run rules (nil when there is none).
type builtRBAC struct {
	rules, shadow *rbacpb.RBAC
}

// SkippedRule is a rule (or a field of it) left out of a chain's RBAC config: an ALLOW
// rule with an HTTP-only field on a TCP chain, or the field a DENY or AUDIT rule lost.
type SkippedRule struct {
	Policy  *model.AuthzPolicy
	Rule    int
	Dropped bool // true: the field was dropped from a DENY/AUDIT rule; false: the ALLOW rule was skipped
	Reason  string
}

// build is Istio's Builder.build for one action (namePrefix: the CUSTOM provider's).
func (b authzBuilder) build(policies []*model.AuthzPolicy, action rbacpb.RBAC_Action, forTCP bool, namePrefix string) *builtRBAC {
	if len(policies) == 0 {
		return nil
	}
	enforced := &rbacpb.RBAC{Action: action, Policies: map[string]*rbacpb.Policy{}}
	shadow := &rbacpb.RBAC{Action: action, Policies: map[string]*rbacpb.Policy{}}
	hasEnforced, hasShadow := false, false
	for _, ap := range policies {
		cur := enforced
		if ap.DryRun {
			cur, hasShadow = shadow, true
		} else {
			hasEnforced = true
		}
		for name, pol := range b.policyRules(ap, action, forTCP, namePrefix, nil) {
			cur.Policies[name] = pol
		}
	}
	out := &builtRBAC{}
	if hasEnforced {
		out.rules = enforced
	}
	if hasShadow {
		out.shadow = shadow
	}
	return out
}

// policyRules are one policy's RBAC policies by Istio's name
// ns[<ns>]-policy[<name>]-rule[<i>]; skipped, when set, collects what a TCP chain leaves out.
func (b authzBuilder) policyRules(ap *model.AuthzPolicy, action rbacpb.RBAC_Action, forTCP bool, namePrefix string, skipped *[]SkippedRule) map[string]*rbacpb.Policy {
	out := map[string]*rbacpb.Policy{}
	for i, rule := range ap.Spec.GetRules() {
		if rule == nil {
			continue
		}
		name := policyName(namePrefix, ap.Namespace, ap.Name, i)
		m, err := newRuleModel(ap.Namespace, rule)
		if err != nil {
			continue // validation rejects such rules; keep the others
		}
		m.migrateTrustDomain(b.bundle)
		pol, err := m.generate(forTCP, action)
		if err != nil {
			if skipped != nil {
				*skipped = append(*skipped, SkippedRule{Policy: ap, Rule: i, Reason: err.Error()})
			}
			continue
		}
		if forTCP && skipped != nil && action != rbacpb.RBAC_ALLOW {
			if _, err := m.generate(true, rbacpb.RBAC_ALLOW); err != nil {
				*skipped = append(*skipped, SkippedRule{Policy: ap, Rule: i, Dropped: true, Reason: err.Error()})
			}
		}
		out[name] = pol
	}
	if len(ap.Spec.GetRules()) == 0 {
		out[policyName(namePrefix, ap.Namespace, ap.Name, 0)] = rbacPolicyMatchNever()
	}
	return out
}

func policyName(prefix, ns, name string, rule int) string {
	return fmt.Sprintf("%sns[%s]-policy[%s]-rule[%d]", prefix, ns, name, rule)
}

// TCPSkippedRules lists, for an AuthorizationPolicy applied to a TCP port, the rules and
// fields that cannot apply to a connection (lucid analyze reports them).
func TCPSkippedRules(m *model.Mesh, ap *model.AuthzPolicy) []SkippedRule {
	action := map[string]rbacpb.RBAC_Action{"ALLOW": rbacpb.RBAC_ALLOW, "DENY": rbacpb.RBAC_DENY, "AUDIT": rbacpb.RBAC_LOG, "CUSTOM": rbacpb.RBAC_DENY}[ap.Spec.GetAction().String()]
	var out []SkippedRule
	authzBuilder{bundle: trustBundle(m)}.policyRules(ap, action, true, "", &out)
	slices.SortFunc(out, func(a, b SkippedRule) int { return a.Rule - b.Rule })
	return out
}
