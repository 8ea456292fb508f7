// Package rbac evaluates Envoy's RBAC filter (envoy.filters.http.rbac and
// envoy.filters.network.rbac) over one request's or connection's attributes, with
// Envoy's semantics, and explains the verdict: which policy and rule matched and on which
// attribute, or, when nothing allowed the request, why each policy did not match.
//
// It sits in the request path after jwt_authn and before routing to the upstream:
//
//	xdsclient → resource.RBACFilter → rbac.Compile (once per configuration)
//	request → pathnorm → jwtauthn (JWT payload) → rbac.Filter.Check → forward
//
// The control plane writes Istio's AuthorizationPolicies as these filters (policy names
// "ns[<ns>]-policy[<name>]-rule[<i>]"); docs/authz.md describes the mapping. Check
// allocates nothing for the common attributes; explanations are built only on demand
// (Explain), for denials.
package rbac

import (
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/lucid-mesh/lucid/internal/dataplane/pathnorm"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// Request is what the RBAC engine reads about a request (HTTP filter) or a connection
// (network filter: HTTP false, no headers or path).
type Request struct {
	// Principal is the URI SAN of the peer's certificate (Istio's SPIFFE ID,
	// "spiffe://cluster.local/ns/default/sa/sleep"); "" when the peer presented none
	// (plaintext, or TLS without a client certificate). Istio's principals, namespaces
	// and source.principal/source.namespace match it.
	Principal string
	// DirectRemoteIP is the connection's peer address (Istio's ipBlocks, source.ip).
	DirectRemoteIP netip.Addr
	// RemoteIP is the client address after x-forwarded-for (remoteIpBlocks, remote.ip;
	// see RemoteAddress). Zero means DirectRemoteIP.
	RemoteIP netip.Addr
	// DestinationIP and DestinationPort are the connection's local address (original
	// destination): destination.ip, destination.port and the operation's ports.
	DestinationIP   netip.Addr
	DestinationPort uint32
	SNI             string // the TLS server name (connection.sni)

	HTTP      bool
	Method    string      // :method
	Authority string      // :authority (Host)
	Path      string      // :path, normalised (pathnorm), with the query
	Headers   http.Header // the request headers, canonical keys (as net/http's server keeps them)
	// Metadata is the request's dynamic metadata: jwt_authn's payload (filter
	// "envoy.filters.http.jwt_authn", key "payload"), the RBAC filters' shadow results.
	Metadata Metadata

	urlPath  string // Path without query and fragment, computed once (urlPathOf)
	stripped bool
}

// urlPathOf is what url_path matchers see: the path without query and fragment.
func (req *Request) urlPathOf() string {
	if !req.stripped {
		req.urlPath, req.stripped = pathnorm.Strip(req.Path), true
	}
	return req.urlPath
}

// Metadata is dynamic metadata: fields per filter namespace. Values are JSON-shaped:
// string, float64, bool, nil, []any, map[string]any.
type Metadata []MetadataEntry

// MetadataEntry is one filter namespace of dynamic metadata.
type MetadataEntry struct {
	Filter string
	Fields map[string]any
}

// Fields returns the fields of filter namespace name, or nil.
func (m Metadata) Fields(name string) map[string]any {
	for i := range m {
		if m[i].Filter == name {
			return m[i].Fields
		}
	}
	return nil
}

// Set sets one field of filter namespace name.
func (m *Metadata) Set(name, key string, v any) {
	for i := range *m {
		if (*m)[i].Filter == name {
			(*m)[i].Fields[key] = v
			return
		}
	}
	*m = append(*m, MetadataEntry{Filter: name, Fields: map[string]any{key: v}})
}

// Filter is one compiled RBAC filter.
type Filter struct {
	Name         string // the filter's configured name
	rules        *engine
	shadow       *engine
	shadowPrefix string
	statPrefix   string
	stats        Stats
}

// Stats are the filter's counters, Envoy's <stat_prefix>rbac.* (and the shadow ones with
// the shadow rules' prefix).
type Stats struct {
	Allowed, Denied             atomic.Uint64
	ShadowAllowed, ShadowDenied atomic.Uint64
	Logged, NotLogged           atomic.Uint64
	// PolicyDenied counts, per policy name, the requests that policy denied (for an ALLOW
	// engine: denied with no policy matching, under "none").
	PolicyDenied map[string]*atomic.Uint64
}

// Stats returns the filter's counters.
func (f *Filter) Stats() *Stats { return &f.stats }

// ShadowRulesStatPrefix is the filter's shadow_rules_stat_prefix.
func (f *Filter) ShadowRulesStatPrefix() string { return f.shadowPrefix }

// engine is a compiled config.rbac.v3.RBAC.
type engine struct {
	action   resource.RBACAction
	policies []policy
}

type policy struct {
	name        string
	permissions []perm
	principals  []princ
}

// Compile prepares f for evaluation. f must come from xdsclient (validated); it is not
// modified and may be shared.
func Compile(name string, f *resource.RBACFilter) *Filter {
	out := &Filter{Name: name, shadowPrefix: f.ShadowRulesStatPrefix, statPrefix: f.StatPrefix}
	out.stats.PolicyDenied = map[string]*atomic.Uint64{"none": new(atomic.Uint64)}
	if f.Rules != nil {
		out.rules = compileEngine(f.Rules)
		for _, p := range out.rules.policies {
			out.stats.PolicyDenied[p.name] = new(atomic.Uint64)
		}
	}
	if f.ShadowRules != nil {
		out.shadow = compileEngine(f.ShadowRules)
	}
	return out
}

func compileEngine(r *resource.RBAC) *engine {
	e := &engine{action: r.Action}
	for _, p := range r.Policies {
		cp := policy{name: p.Name}
		for i := range p.Permissions {
			cp.permissions = append(cp.permissions, compilePerm(&p.Permissions[i]))
		}
		for i := range p.Principals {
			cp.principals = append(cp.principals, compilePrinc(&p.Principals[i]))
		}
		e.policies = append(e.policies, cp)
	}
	return e
}

// Engine result values written to dynamic metadata, as Envoy writes them.
const (
	EngineAllowed = "allowed"
	EngineDenied  = "denied"
)

// Envoy's RBAC dynamic metadata keys (prefixed with the shadow rules' stat prefix) and
// the HTTP filter's metadata namespace.
const (
	MetadataNamespace         = "envoy.filters.http.rbac"
	ShadowEffectivePolicyID   = "shadow_effective_policy_id"
	ShadowEngineResult        = "shadow_engine_result"
	AccessLogHintNamespace    = "envoy.common"
	AccessLogHintKey          = "access_log_hint"
	deniedDetailsPrefix       = "rbac_access_denied_matched_policy["
	networkMetadataNamespace  = "envoy.filters.network.rbac"
	defaultNoPolicyMatchLabel = "none"
)

// Result is the outcome of one RBAC filter.
type Result struct {
	Allowed bool
	// Enforced is false when the filter has no rules (only shadow rules): it allows.
	Enforced bool
	Action   resource.RBACAction // the rules' action
	// PolicyID is the effective policy: the one that matched (ALLOW: allowed it; DENY:
	// denied it; LOG: asked for the access log), "" when none matched.
	PolicyID string
	// Logged: a LOG (Istio AUDIT) policy matched.
	Logged bool
	// Shadow is the shadow rules' verdict (Istio's dry-run and CUSTOM trigger); ShadowSet
	// says whether the filter has shadow rules.
	ShadowSet      bool
	ShadowAllowed  bool
	ShadowPolicyID string
}

// Details is Envoy's response_code_details for a denial:
// "rbac_access_denied_matched_policy[<policy>]" ("none" when no policy matched).
func (r Result) Details() string {
	id := r.PolicyID
	if id == "" {
		id = defaultNoPolicyMatchLabel
	}
	return deniedDetailsPrefix + whitespaceToUnderscore(id) + "]"
}

// Check evaluates the filter on req as Envoy's RBAC filter does: the shadow rules first
// (their result recorded in req.Metadata under the shadow prefix), then the rules. It
// counts the outcome in the filter's Stats.
func (f *Filter) Check(req *Request) Result {
	res := Result{Allowed: true}
	if f.shadow != nil {
		res.ShadowSet = true
		res.ShadowAllowed, res.ShadowPolicyID = f.shadow.handle(req)
		ns := MetadataNamespace
		if !req.HTTP {
			ns = networkMetadataNamespace
		}
		if res.ShadowPolicyID != "" {
			req.Metadata.Set(ns, f.shadowPrefix+ShadowEffectivePolicyID, res.ShadowPolicyID)
		}
		r := EngineDenied
		if res.ShadowAllowed {
			r = EngineAllowed
		}
		req.Metadata.Set(ns, f.shadowPrefix+ShadowEngineResult, r)
		if res.ShadowAllowed {
			f.stats.ShadowAllowed.Add(1)
		} else {
			f.stats.ShadowDenied.Add(1)
		}
	}
	if f.rules == nil {
		return res
	}
	res.Enforced, res.Action = true, f.rules.action
	res.Allowed, res.PolicyID = f.rules.handle(req)
	switch {
	case f.rules.action == resource.RBACLog:
		res.Logged = res.PolicyID != ""
		if res.Logged {
			f.stats.Logged.Add(1)
		} else {
			f.stats.NotLogged.Add(1)
		}
		res.Allowed = true
	case res.Allowed:
		f.stats.Allowed.Add(1)
	default:
		f.stats.Denied.Add(1)
		id := res.PolicyID
		if id == "" {
			id = defaultNoPolicyMatchLabel
		}
		if c := f.stats.PolicyDenied[id]; c != nil {
			c.Add(1)
		}
	}
	return res
}

// handle is Envoy's RoleBasedAccessControlEngineImpl::handleAction: the first policy (in
// name order) that matches decides.
func (e *engine) handle(req *Request) (allowed bool, policyID string) {
	for i := range e.policies {
		if e.policies[i].matches(req) {
			policyID = e.policies[i].name
			break
		}
	}
	switch e.action {
	case resource.RBACAllow:
		return policyID != "", policyID
	case resource.RBACDeny:
		return policyID == "", policyID
	}
	return true, policyID
}

func (p *policy) matches(req *Request) bool {
	return anyPerm(p.permissions, req) && anyPrinc(p.principals, req)
}

func anyPerm(ps []perm, req *Request) bool {
	for i := range ps {
		if ps[i].matches(req) {
			return true
		}
	}
	return false
}

func anyPrinc(ps []princ, req *Request) bool {
	for i := range ps {
		if ps[i].matches(req) {
			return true
		}
	}
	return false
}

func whitespaceToUnderscore(s string) string {
	if !strings.ContainsAny(s, " \t\n\r\f\v") {
		return s
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\n', '\r', '\f', '\v':
			return '_'
		}
		return r
	}, s)
}
