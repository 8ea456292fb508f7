package rbac

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// maxExplained bounds the policies a "no policy matched" explanation lists: it becomes a
// header, and a denial must stay cheap.
const maxExplained = 5

// JWT payload location Istio uses: filter jwt_authn, payload_in_metadata "payload".
const (
	jwtFilter     = "envoy.filters.http.jwt_authn"
	jwtPayloadKey = "payload"
)

// Explain says in one line why the filter's rules gave res for req: for a matched policy,
// the attributes that matched it; when no policy matched, each policy considered with the
// first attribute that did not match. It re-evaluates req and is meant for denials and
// diagnostics, not for every request.
func (f *Filter) Explain(req *Request, res Result) string {
	if f.rules == nil {
		return "the filter has no enforced rules"
	}
	return f.rules.explain(req, res.PolicyID)
}

// ExplainShadow is Explain for the shadow rules (Istio's dry-run policies).
func (f *Filter) ExplainShadow(req *Request, res Result) string {
	if f.shadow == nil {
		return "the filter has no shadow rules"
	}
	return f.shadow.explain(req, res.ShadowPolicyID)
}

func (e *engine) explain(req *Request, policyID string) string {
	if policyID != "" {
		for i := range e.policies {
			if e.policies[i].name == policyID {
				return fmt.Sprintf("%s policy %s: %s", actionName(e.action), PolicyLabel(policyID), e.policies[i].explainMatch(req))
			}
		}
	}
	if len(e.policies) == 0 {
		return fmt.Sprintf("no %s policy matched; no policies", actionName(e.action))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "no %s policy matched; policies considered: ", actionName(e.action))
	for i := range e.policies {
		if i == maxExplained {
			fmt.Fprintf(&b, " and %d more", len(e.policies)-i)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s (%s)", PolicyLabel(e.policies[i].name), e.policies[i].explainMiss(req))
	}
	return b.String()
}

// actionName is the Istio action an RBAC action comes from (LOG is Istio's AUDIT).
func actionName(a resource.RBACAction) string {
	if a == resource.RBACLog {
		return "AUDIT"
	}
	return a.String()
}

// PolicyLabel turns Istio's policy name "ns[foo]-policy[bar]-rule[2]" (with or without
// the CUSTOM prefix "istio-ext-authz-<provider>-") into "AuthorizationPolicy foo/bar
// rules[2]"; other names are quoted as they are.
func PolicyLabel(id string) string {
	s := id
	if i := strings.Index(s, "ns["); i > 0 && strings.HasPrefix(s, "istio-ext-authz") {
		s = s[i:]
	}
	ns, rest, ok := cutBracket(s, "ns[")
	if !ok || !strings.HasPrefix(rest, "-policy[") {
		return strconv.Quote(id)
	}
	name, rest, ok := cutBracket(rest, "-policy[")
	if !ok || !strings.HasPrefix(rest, "-rule[") {
		return strconv.Quote(id)
	}
	rule, rest, ok := cutBracket(rest, "-rule[")
	if !ok {
		return strconv.Quote(id)
	}
	out := "AuthorizationPolicy " + ns + "/" + name + " rules[" + rule + "]"
	if rest != "" {
		out += " " + rest // e.g. "-deny-due-to-bad-CUSTOM-action"
	}
	return out
}

func cutBracket(s, open string) (inner, rest string, ok bool) {
	if !strings.HasPrefix(s, open) {
		return "", "", false
	}
	s = s[len(open):]
	i := strings.IndexByte(s, ']')
	if i < 0 {
		return "", "", false
	}
	return s[:i], s[i+1:], true
}

func (p *policy) explainMatch(req *Request) string {
	var parts []string
	for i := range p.permissions {
		if ok, why := p.permissions[i].explain(req); ok {
			if why != "" {
				parts = append(parts, why)
			}
			break
		}
	}
	for i := range p.principals {
		if ok, why := p.principals[i].explain(req); ok {
			if why != "" {
				parts = append(parts, why)
			}
			break
		}
	}
	if len(parts) == 0 {
		return "matches every request"
	}
	return strings.Join(parts, "; ")
}

// explainMiss is the first reason p does not match req.
func (p *policy) explainMiss(req *Request) string {
	if isMatchNever(p) {
		return "a policy with no rules matches nothing"
	}
	var whys []string
	permOK := false
	for i := range p.permissions {
		ok, why := p.permissions[i].explain(req)
		if ok {
			permOK = true
			break
		}
		whys = append(whys, why)
	}
	if !permOK {
		return strings.Join(dedupe(whys), " or ")
	}
	whys = whys[:0]
	for i := range p.principals {
		ok, why := p.principals[i].explain(req)
		if ok {
			return "matches" // cannot happen for a policy that did not match
		}
		whys = append(whys, why)
	}
	return strings.Join(dedupe(whys), " or ")
}

// isMatchNever recognises Istio's policy for an ALLOW policy without rules:
// permissions not(any), principals not(any).
func isMatchNever(p *policy) bool {
	return len(p.permissions) == 1 && p.permissions[0].src.Kind == resource.PermNot &&
		p.permissions[0].not.src.Kind == resource.PermAny
}

func dedupe(ss []string) []string {
	out := ss[:0]
	seen := map[string]bool{}
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// explain evaluates p and says why: for a match, the attributes that made it match
// ("" for any); for a miss, the attribute that failed.
func (p *perm) explain(req *Request) (bool, string) {
	s := p.src
	switch s.Kind {
	case resource.PermAny:
		return true, ""
	case resource.PermAnd:
		return explainAll(len(p.rules), func(i int) (bool, string) { return p.rules[i].explain(req) })
	case resource.PermOr:
		return explainAny(len(p.rules), func(i int) (bool, string) { return p.rules[i].explain(req) })
	case resource.PermNot:
		ok, why := p.not.explain(req)
		return !ok, why
	case resource.PermHeader:
		return p.hdr.explain(req)
	case resource.PermURLPath:
		path := req.urlPathOf()
		ok := p.matches(req)
		return ok, fmt.Sprintf("path %q %s %s", path, verb(ok), describeString(&s.String))
	case resource.PermURITemplate:
		path := req.urlPathOf()
		ok := p.matches(req)
		return ok, fmt.Sprintf("path %q %s template %q", path, verb(ok), s.Template)
	case resource.PermDestinationIP:
		ok := p.matches(req)
		return ok, fmt.Sprintf("destination.ip %s %s %s", addr(req.DestinationIP), in(ok), s.CIDR)
	case resource.PermDestinationPort:
		ok := p.matches(req)
		return ok, fmt.Sprintf("destination.port %d %s %d", req.DestinationPort, is(ok), s.Port)
	case resource.PermDestinationPortRange:
		ok := p.matches(req)
		return ok, fmt.Sprintf("destination.port %d %s [%d, %d)", req.DestinationPort, in(ok), s.Port, s.PortEnd)
	case resource.PermRequestedServerName:
		ok := p.matches(req)
		return ok, fmt.Sprintf("connection.sni %q %s %s", req.SNI, verb(ok), describeString(&s.String))
	case resource.PermMetadata:
		return explainMetadata(&p.md, req)
	}
	return false, "unsupported permission"
}

func (p *princ) explain(req *Request) (bool, string) {
	s := p.src
	switch s.Kind {
	case resource.PrincAny:
		return true, ""
	case resource.PrincAnd:
		return explainAll(len(p.ids), func(i int) (bool, string) { return p.ids[i].explain(req) })
	case resource.PrincOr:
		return explainAny(len(p.ids), func(i int) (bool, string) { return p.ids[i].explain(req) })
	case resource.PrincNot:
		ok, why := p.not.explain(req)
		return !ok, why
	case resource.PrincAuthenticated:
		ok := p.matches(req)
		switch {
		case req.Principal == "":
			return false, "the peer has no mTLS identity (plaintext or no client certificate)"
		case s.Authenticated == nil:
			return true, fmt.Sprintf("peer %q is authenticated", req.Principal)
		}
		return ok, fmt.Sprintf("source.principal %q %s %s", req.Principal, verb(ok), describeString(s.Authenticated))
	case resource.PrincDirectRemoteIP, resource.PrincSourceIP:
		ok := p.matches(req)
		return ok, fmt.Sprintf("source.ip %s %s %s", addr(req.DirectRemoteIP), in(ok), s.CIDR)
	case resource.PrincRemoteIP:
		ok := p.matches(req)
		return ok, fmt.Sprintf("remote.ip %s %s %s", addr(req.remoteIP()), in(ok), s.CIDR)
	case resource.PrincHeader:
		return p.hdr.explain(req)
	case resource.PrincURLPath:
		ok := p.matches(req)
		return ok, fmt.Sprintf("path %q %s %s", req.urlPathOf(), verb(ok), describeString(&s.Path))
	case resource.PrincMetadata:
		return explainMetadata(&p.md, req)
	}
	return false, "unsupported principal"
}

// explainAll explains an AND of n conditions: the first that fails, or all that hold.
func explainAll(n int, child func(int) (bool, string)) (bool, string) {
	var parts []string
	for i := range n {
		ok, why := child(i)
		if !ok {
			return false, why
		}
		if why != "" {
			parts = append(parts, why)
		}
	}
	return true, strings.Join(parts, ", ")
}

// explainAny explains an OR of n conditions: the first that holds, or why none does.
func explainAny(n int, child func(int) (bool, string)) (bool, string) {
	misses := make([]string, 0, n)
	for i := range n {
		ok, why := child(i)
		if ok {
			return true, why
		}
		misses = append(misses, why)
	}
	return false, joinMisses(misses)
}

func (h *header) explain(req *Request) (bool, string) {
	ok := h.matches(req)
	v, present := h.value(req)
	label := h.m.Name
	if !strings.HasPrefix(label, ":") {
		label = "header " + label
	}
	want := describeString(&h.m.Value)
	if h.m.Present {
		want = "present"
	}
	if h.m.Invert {
		want = "not " + want
	}
	if !present {
		return ok, fmt.Sprintf("%s is absent (wants %s)", label, want)
	}
	return ok, fmt.Sprintf("%s %q %s %s", label, v, verb(ok), want)
}

func explainMetadata(c *metadataMatcher, req *Request) (bool, string) {
	m := c.m
	ok := c.matches(req.Metadata)
	label := metadataLabel(m)
	v, present := lookupMetadata(m, req.Metadata)
	want := describeValue(&m.Value)
	if m.Invert {
		want = "not " + want
	}
	switch {
	case !present && m.Filter == jwtFilter && req.Metadata.Fields(jwtFilter) == nil:
		return ok, fmt.Sprintf("%s: the request has no valid JWT (wants %s)", label, want)
	case !present:
		return ok, fmt.Sprintf("%s is absent (wants %s)", label, want)
	}
	return ok, fmt.Sprintf("%s %s %s %s", label, describeJSON(v), verb(ok), want)
}

// metadataLabel names a metadata path the way Istio's policy did: request.auth.claims[..]
// for the JWT payload.
func metadataLabel(m *resource.MetadataMatcher) string {
	if m.Filter == jwtFilter && len(m.Path) > 1 && m.Path[0] == jwtPayloadKey {
		return "request.auth.claims[" + strings.Join(m.Path[1:], "][") + "]"
	}
	return "metadata " + m.Filter + "[" + strings.Join(m.Path, "][") + "]"
}

func describeJSON(v any) string {
	switch t := v.(type) {
	case string:
		return strconv.Quote(t)
	case []any:
		parts := make([]string, len(t))
		for i, e := range t {
			parts[i] = describeJSON(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case nil:
		return "null"
	}
	return fmt.Sprint(v)
}

func describeValue(m *resource.ValueMatcher) string {
	switch m.Kind {
	case resource.ValueString:
		return describeString(&m.String)
	case resource.ValueBool:
		return "bool " + strconv.FormatBool(m.Bool)
	case resource.ValuePresent:
		return "present"
	case resource.ValueNull:
		return "null"
	case resource.ValueDouble:
		if m.IsRange {
			return fmt.Sprintf("in [%g, %g)", m.Range[0], m.Range[1])
		}
		return fmt.Sprintf("number %g", m.Double)
	case resource.ValueList:
		return "a list with an element matching " + describeValue(m.OneOf)
	case resource.ValueOr:
		parts := make([]string, len(m.Matchers))
		for i := range m.Matchers {
			parts[i] = describeValue(&m.Matchers[i])
		}
		return "one of [" + strings.Join(parts, ", ") + "]"
	}
	return "?"
}

func describeString(m *resource.StringMatcher) string {
	var s string
	switch m.Kind {
	case resource.MatchExact:
		s = "exact " + strconv.Quote(m.Value)
	case resource.MatchPrefix:
		s = "prefix " + strconv.Quote(m.Value)
	case resource.MatchSuffix:
		s = "suffix " + strconv.Quote(m.Value)
	case resource.MatchContains:
		s = "contains " + strconv.Quote(m.Value)
	case resource.MatchRegex:
		if m.Regex != nil {
			s = "regex " + strconv.Quote(strings.TrimSuffix(strings.TrimPrefix(m.Regex.String(), "^(?:"), ")$"))
		}
	}
	if m.IgnoreCase {
		s += " (ignoring case)"
	}
	return s
}

// joinMisses merges "X "v" does not match A", "X "v" does not match B" into
// "X "v" does not match A, B".
func joinMisses(ms []string) string {
	if len(ms) == 0 {
		return "no alternative"
	}
	const sep = " does not match "
	head, _, ok := strings.Cut(ms[0], sep)
	if !ok {
		return strings.Join(ms, " and ")
	}
	wants := make([]string, 0, len(ms))
	for _, m := range ms {
		h, w, ok := strings.Cut(m, sep)
		if !ok || h != head {
			return strings.Join(ms, " and ")
		}
		wants = append(wants, w)
	}
	if len(wants) == 1 {
		return ms[0]
	}
	return head + " matches none of " + strings.Join(wants, ", ")
}

func verb(ok bool) string {
	if ok {
		return "matches"
	}
	return "does not match"
}

func in(ok bool) string {
	if ok {
		return "is in"
	}
	return "is not in"
}

func is(ok bool) string {
	if ok {
		return "is"
	}
	return "is not"
}

func addr(a interface{ IsValid() bool }) string {
	if !a.IsValid() {
		return "(unknown)"
	}
	return fmt.Sprint(a)
}
