package translate

// One AuthorizationPolicy rule as an Envoy RBAC policy, with Istio's mapping
// (pilot/pkg/security/authz/model): every attribute of the rule is one condition; the
// values of a field are OR'ed, the notValues negated; conditions are AND'ed; the rule's
// `from` entries are its principals, its `to` entries its permissions.

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rbacpb "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	uritemplatepb "github.com/envoyproxy/go-control-plane/envoy/extensions/path/match/uri_template/v3"
	matcherpb "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
	securityv1beta1 "istio.io/api/security/v1beta1"

	"github.com/lucid-mesh/lucid/internal/contract/pathtemplate"
)

// Names in the RBAC config Istio generates.
const (
	JWTAuthnFilter   = "envoy.filters.http.jwt_authn"
	jwtPayloadKey    = "payload"
	spiffePrefix     = "spiffe://"
	methodHeader     = ":method"
	authorityHeader  = ":authority"
	uriTemplateName  = "uri-template"
	attrRequestHdr   = "request.headers"
	attrRequestClaim = "request.auth.claims"
	attrExperimental = "experimental.envoy.filters."
)

// httpOnlyError is a field that has no meaning on a TCP connection.
type httpOnlyError struct{ key string }

func (e httpOnlyError) Error() string { return fmt.Sprintf("%q is HTTP only", e.key) }

// condition is one attribute of a rule with its values and notValues.
type condition struct {
	key               string
	values, notValues []string
	// ns is the policy's namespace (service accounts without one default to it).
	ns string
}

// ruleModel is Istio's authz Model: one rule's conditions, grouped into principals (one
// per `from`) and permissions (one per `to`).
type ruleModel struct {
	permissions [][]condition
	principals  [][]condition
}

// newRuleModel is Istio's model.New: `when` conditions go last, in order; the source and
// operation fields go first, in Istio's order.
func newRuleModel(ns string, r *securityv1beta1.Rule) (*ruleModel, error) {
	var basePerm, basePrinc []condition
	for _, w := range r.When {
		c := condition{key: w.Key, values: w.Values, notValues: w.NotValues, ns: ns}
		switch k := w.Key; {
		case k == "destination.ip", k == "destination.port", k == "connection.sni", strings.HasPrefix(k, attrExperimental):
			basePerm = appendCond(basePerm, c)
		case k == "source.ip", k == "remote.ip", k == "source.namespace", k == "source.trustDomain",
			k == "source.serviceAccount", k == "source.principal", k == "request.auth.principal",
			k == "request.auth.audiences", k == "request.auth.presenter",
			strings.HasPrefix(k, attrRequestHdr), strings.HasPrefix(k, attrRequestClaim):
			basePrinc = appendCond(basePrinc, c)
		default:
			return nil, fmt.Errorf("unknown attribute %s", w.Key)
		}
	}
	m := &ruleModel{}
	for _, f := range r.From {
		merged := append([]condition(nil), basePrinc...)
		if s := f.GetSource(); s != nil {
			for _, c := range []condition{
				{key: "source.ip", values: s.IpBlocks, notValues: s.NotIpBlocks},
				{key: "remote.ip", values: s.RemoteIpBlocks, notValues: s.NotRemoteIpBlocks},
				{key: "source.namespace", values: s.Namespaces, notValues: s.NotNamespaces},
				{key: "source.trustDomain", values: s.TrustDomains, notValues: s.NotTrustDomains},
				{key: "source.serviceAccount", values: s.ServiceAccounts, notValues: s.NotServiceAccounts},
				{key: "request.auth.principal", values: s.RequestPrincipals, notValues: s.NotRequestPrincipals},
				{key: "source.principal", values: s.Principals, notValues: s.NotPrincipals},
			} {
				c.ns = ns
				merged = prependCond(merged, c)
			}
		}
		m.principals = append(m.principals, merged)
	}
	if len(r.From) == 0 {
		m.principals = append(m.principals, basePrinc)
	}
	for _, t := range r.To {
		merged := append([]condition(nil), basePerm...)
		if o := t.GetOperation(); o != nil {
			for _, c := range []condition{
				{key: "destination.port", values: o.Ports, notValues: o.NotPorts},
				{key: "path", values: o.Paths, notValues: o.NotPaths},
				{key: "method", values: o.Methods, notValues: o.NotMethods},
				{key: "host", values: o.Hosts, notValues: o.NotHosts},
			} {
				c.ns = ns
				merged = prependCond(merged, c)
			}
		}
		m.permissions = append(m.permissions, merged)
	}
	if len(r.To) == 0 {
		m.permissions = append(m.permissions, basePerm)
	}
	return m, nil
}

func appendCond(l []condition, c condition) []condition {
	if len(c.values) == 0 && len(c.notValues) == 0 {
		return l
	}
	return append(l, c)
}

func prependCond(l []condition, c condition) []condition {
	if len(c.values) == 0 && len(c.notValues) == 0 {
		return l
	}
	return append([]condition{c}, l...)
}

// migrateTrustDomain is Istio's MigrateTrustDomain: principals of the mesh's trust domain
// (or cluster.local) are generated for every trust domain of the bundle; trustDomains
// values are expanded to the aliases.
func (m *ruleModel) migrateTrustDomain(bundle []string) {
	for _, list := range m.principals {
		for i := range list {
			c := &list[i]
			switch c.key {
			case "source.principal":
				c.values = replaceTrustDomainAliases(bundle, c.values)
				c.notValues = replaceTrustDomainAliases(bundle, c.notValues)
			case "source.trustDomain":
				c.values = expandTrustDomainAliases(bundle, c.values)
				c.notValues = expandTrustDomainAliases(bundle, c.notValues)
			}
		}
	}
}

func replaceTrustDomainAliases(bundle, principals []string) []string {
	if len(principals) == 0 {
		return principals
	}
	var out []string
	for _, p := range principals {
		parts := strings.Split(p, "/")
		if len(parts) != 5 || parts[0] == "*" {
			out = append(out, p)
			continue
		}
		td := parts[0]
		if !inBundle(bundle, td) && td != "cluster.local" {
			out = append(out, p)
			continue
		}
		for _, b := range bundle {
			np := b + "/" + strings.Join(parts[1:], "/")
			if suffixMatch(b, td) {
				np = p
			}
			if !slices.Contains(out, np) {
				out = append(out, np)
			}
		}
	}
	return out
}

func inBundle(bundle []string, td string) bool {
	for _, b := range bundle {
		if b == td || suffixMatch(b, td) {
			return true
		}
	}
	return false
}

// suffixMatch: a trust domain "*-td" in a policy matches "old-td".
func suffixMatch(td, pattern string) bool {
	return strings.HasPrefix(pattern, "*") && strings.HasSuffix(td, pattern[1:])
}

func expandTrustDomainAliases(bundle, values []string) []string {
	if len(values) == 0 {
		return values
	}
	var out []string
	for _, v := range values {
		if slices.Contains(bundle, v) {
			for _, b := range bundle {
				if !slices.Contains(out, b) {
					out = append(out, b)
				}
			}
		} else if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// generate is Istio's Model.Generate. An error means the rule is skipped (ALLOW with an
// HTTP-only field on a TCP chain); for DENY and AUDIT such fields are dropped instead,
// making the rule wider (checkError).
func (m *ruleModel) generate(forTCP bool, action rbacpb.RBAC_Action) (*rbacpb.Policy, error) {
	out := &rbacpb.Policy{}
	for _, list := range m.permissions {
		var and []*rbacpb.Permission
		for _, c := range list {
			ps, err := c.permissions(forTCP, action)
			if err != nil {
				return nil, err
			}
			and = append(and, ps...)
		}
		if len(and) == 0 {
			and = append(and, permAny())
		}
		out.Permissions = append(out.Permissions, &rbacpb.Permission{Rule: &rbacpb.Permission_AndRules{AndRules: &rbacpb.Permission_Set{Rules: and}}})
	}
	for _, list := range m.principals {
		var and []*rbacpb.Principal
		for _, c := range list {
			ps, err := c.principals(forTCP, action)
			if err != nil {
				return nil, err
			}
			and = append(and, ps...)
		}
		if len(and) == 0 {
			and = append(and, princAny())
		}
		out.Principals = append(out.Principals, &rbacpb.Principal{Identifier: &rbacpb.Principal_AndIds{AndIds: &rbacpb.Principal_Set{Ids: and}}})
	}
	return out, nil
}

// checkError is Istio's: an ALLOW rule fails as a whole; DENY and AUDIT drop the value.
func checkError(action rbacpb.RBAC_Action, err error) error {
	if action == rbacpb.RBAC_ALLOW {
		return err
	}
	return nil
}

// extended reports whether a key's values make one matcher together (the JWT ones and
// experimental metadata), rather than one matcher per value.
func (c condition) extended() bool {
	switch {
	case c.key == "request.auth.principal", c.key == "request.auth.audiences", c.key == "request.auth.presenter",
		strings.HasPrefix(c.key, attrRequestClaim), strings.HasPrefix(c.key, attrExperimental):
		return true
	}
	return false
}

// matcherOps builds one side (Permission or Principal) of a condition.
type matcherOps[T comparable] struct {
	one      func(v string) (T, error)    // one value's matcher
	extended func(vs []string) (T, error) // all values together (extended conditions)
	or       func([]T) T
	not      func(T) T
}

// buildCondition is Istio's rule.permission/principal: the values OR'ed (or one extended
// matcher), the notValues the same, negated; checkError decides what an error does.
func buildCondition[T comparable](c condition, action rbacpb.RBAC_Action, ops matcherOps[T]) ([]T, error) {
	var out []T
	var zero T
	for _, set := range []struct {
		values []string
		negate bool
	}{{c.values, false}, {c.notValues, true}} {
		if len(set.values) == 0 {
			continue
		}
		var m T
		if c.extended() {
			em, err := ops.extended(set.values)
			if err := checkError(action, err); err != nil {
				return nil, err
			}
			m = em
		} else {
			var or []T
			for _, v := range set.values {
				one, err := ops.one(v)
				if err := checkError(action, err); err != nil {
					return nil, err
				}
				if one != zero {
					or = append(or, one)
				}
			}
			if len(or) > 0 {
				m = ops.or(or)
			}
		}
		if m == zero {
			continue
		}
		if set.negate {
			m = ops.not(m)
		}
		out = append(out, m)
	}
	return out, nil
}

func (c condition) permissions(forTCP bool, action rbacpb.RBAC_Action) ([]*rbacpb.Permission, error) {
	return buildCondition(c, action, matcherOps[*rbacpb.Permission]{
		one:      func(v string) (*rbacpb.Permission, error) { return c.permission(v, forTCP) },
		extended: c.extendedPermission,
		or: func(ps []*rbacpb.Permission) *rbacpb.Permission {
			return &rbacpb.Permission{Rule: &rbacpb.Permission_OrRules{OrRules: &rbacpb.Permission_Set{Rules: ps}}}
		},
		not: func(p *rbacpb.Permission) *rbacpb.Permission {
			return &rbacpb.Permission{Rule: &rbacpb.Permission_NotRule{NotRule: p}}
		},
	})
}

func (c condition) principals(forTCP bool, action rbacpb.RBAC_Action) ([]*rbacpb.Principal, error) {
	return buildCondition(c, action, matcherOps[*rbacpb.Principal]{
		one:      func(v string) (*rbacpb.Principal, error) { return c.principal(v, forTCP) },
		extended: func(vs []string) (*rbacpb.Principal, error) { return c.extendedPrincipal(vs, forTCP) },
		or: func(ps []*rbacpb.Principal) *rbacpb.Principal {
			return &rbacpb.Principal{Identifier: &rbacpb.Principal_OrIds{OrIds: &rbacpb.Principal_Set{Ids: ps}}}
		},
		not: func(p *rbacpb.Principal) *rbacpb.Principal {
			return &rbacpb.Principal{Identifier: &rbacpb.Principal_NotId{NotId: p}}
		},
	})
}

// permission is one value of a destination-side condition.
func (c condition) permission(v string, forTCP bool) (*rbacpb.Permission, error) {
	switch c.key {
	case "destination.ip":
		cidr, err := cidrRange(v)
		if err != nil {
			return nil, err
		}
		return &rbacpb.Permission{Rule: &rbacpb.Permission_DestinationIp{DestinationIp: cidr}}, nil
	case "destination.port":
		port, err := parsePort(v)
		if err != nil {
			return nil, err
		}
		return &rbacpb.Permission{Rule: &rbacpb.Permission_DestinationPort{DestinationPort: port}}, nil
	case "connection.sni":
		return &rbacpb.Permission{Rule: &rbacpb.Permission_RequestedServerName{RequestedServerName: authzStringMatcher(v, "")}}, nil
	case "host":
		if forTCP {
			return nil, httpOnlyError{"hosts"}
		}
		return &rbacpb.Permission{Rule: &rbacpb.Permission_Header{Header: authzHeaderMatcher(authorityHeader, v, true)}}, nil
	case "method":
		if forTCP {
			return nil, httpOnlyError{"methods"}
		}
		return &rbacpb.Permission{Rule: &rbacpb.Permission_Header{Header: authzHeaderMatcher(methodHeader, v, false)}}, nil
	case "path":
		if forTCP {
			return nil, httpOnlyError{"paths"}
		}
		if pathtemplate.IsIstio(v) {
			return pathTemplatePermission(v), nil
		}
		return &rbacpb.Permission{Rule: &rbacpb.Permission_UrlPath{UrlPath: &matcherpb.PathMatcher{
			Rule: &matcherpb.PathMatcher_Path{Path: authzStringMatcher(v, "")},
		}}}, nil
	}
	return nil, fmt.Errorf("%s is not a destination attribute", c.key)
}

// pathTemplatePermission is an Istio path template ({*}, {**}) as Istio writes it: an
// Envoy uri_template. Istio's validation also passes templates a uri_template cannot
// carry ("{**}", "files/{*}", "//{*}": it trims the slashes at both ends before checking),
// and Envoy then refuses the whole listener; those go out as the same segments in a regex
// on the path, so the listener stands and the template keeps its plain meaning.
func pathTemplatePermission(v string) *rbacpb.Permission {
	tmpl, ok := pathtemplate.URITemplate(v)
	if !ok {
		return &rbacpb.Permission{Rule: &rbacpb.Permission_UrlPath{UrlPath: &matcherpb.PathMatcher{
			Rule: &matcherpb.PathMatcher_Path{Path: regexMatcher(pathtemplate.IstioRegexp(v))},
		}}}
	}
	return &rbacpb.Permission{Rule: &rbacpb.Permission_UriTemplate{UriTemplate: &corepb.TypedExtensionConfig{
		Name: uriTemplateName, TypedConfig: mustAny(&uritemplatepb.UriTemplateMatchConfig{PathTemplate: tmpl}),
	}}}
}

// extendedPermission: experimental.envoy.filters.<filter>[<key>] metadata.
func (c condition) extendedPermission(values []string) (*rbacpb.Permission, error) {
	parts := strings.SplitN(strings.TrimSuffix(strings.TrimPrefix(c.key, "experimental."), "]"), "[", 2)
	if len(parts) != 2 {
		return nil, fmt.Errorf("invalid key: %v", c.key)
	}
	var ms []*matcherpb.ValueMatcher
	for _, v := range values {
		if strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]") {
			ms = append(ms, &matcherpb.ValueMatcher{MatchPattern: &matcherpb.ValueMatcher_ListMatch{ListMatch: &matcherpb.ListMatcher{
				MatchPattern: &matcherpb.ListMatcher_OneOf{OneOf: stringValue(strings.Trim(v, "[]"))},
			}}})
		} else {
			ms = append(ms, stringValue(v))
		}
	}
	return &rbacpb.Permission{Rule: &rbacpb.Permission_Metadata{Metadata: &matcherpb.MetadataMatcher{ //nolint:staticcheck // SA1019: Istio's wire form (sourced_metadata is newer than many Envoys)
		Filter: parts[0], Path: metadataPath(parts[1]), Value: orValues(ms),
	}}}, nil
}

// principal is one value of a source-side condition.
func (c condition) principal(v string, forTCP bool) (*rbacpb.Principal, error) {
	switch {
	case c.key == "source.ip":
		cidr, err := cidrRange(v)
		if err != nil {
			return nil, err
		}
		return &rbacpb.Principal{Identifier: &rbacpb.Principal_DirectRemoteIp{DirectRemoteIp: cidr}}, nil
	case c.key == "remote.ip":
		cidr, err := cidrRange(v)
		if err != nil {
			return nil, err
		}
		return &rbacpb.Principal{Identifier: &rbacpb.Principal_RemoteIp{RemoteIp: cidr}}, nil
	case c.key == "source.namespace":
		parts := strings.Split(v, "*")
		for i := range parts {
			parts[i] = regexp.QuoteMeta(parts[i])
		}
		return authenticated(regexMatcher(fmt.Sprintf(".*/ns/%s/.*", strings.Join(parts, ".*")))), nil
	case c.key == "source.trustDomain":
		switch {
		case v == "*":
			return authenticated(prefixMatcher(spiffePrefix, false)), nil
		case !strings.Contains(v, "*"):
			return authenticated(prefixMatcher(spiffePrefix+v+"/", false)), nil
		}
		parts := strings.SplitN(v, "*", 2)
		return authenticated(regexMatcher(fmt.Sprintf("spiffe://%s[^/]*%s/.*", regexp.QuoteMeta(parts[0]), regexp.QuoteMeta(parts[1])))), nil
	case c.key == "source.serviceAccount":
		ns, sa, ok := strings.Cut(v, "/")
		if !ok {
			ns, sa = c.ns, v
		}
		return authenticated(regexMatcher(fmt.Sprintf("spiffe://.+/ns/%s/(.+/|)sa/%s(/.+)?", regexp.QuoteMeta(ns), regexp.QuoteMeta(sa)))), nil
	case c.key == "source.principal":
		return authenticated(authzStringMatcher(v, spiffePrefix)), nil
	case strings.HasPrefix(c.key, attrRequestHdr):
		if forTCP {
			return nil, httpOnlyError{c.key}
		}
		name, err := nameInBrackets(strings.TrimPrefix(c.key, attrRequestHdr))
		if err != nil {
			return nil, err
		}
		return &rbacpb.Principal{Identifier: &rbacpb.Principal_Header{Header: authzHeaderMatcher(name, v, false)}}, nil
	}
	return nil, fmt.Errorf("%s is not a source attribute", c.key)
}

// extendedPrincipal: request.auth.* as matchers on jwt_authn's payload.
func (c condition) extendedPrincipal(values []string, forTCP bool) (*rbacpb.Principal, error) {
	if forTCP {
		key := c.key
		if key == "request.auth.principal" {
			key = "requestPrincipals"
		}
		return nil, httpOnlyError{key}
	}
	switch {
	case c.key == "request.auth.principal":
		var or []*rbacpb.Principal
		for _, v := range values {
			iss, sub := requestPrincipalMatchers(v)
			or = append(or, &rbacpb.Principal{Identifier: &rbacpb.Principal_AndIds{AndIds: &rbacpb.Principal_Set{Ids: []*rbacpb.Principal{
				jwtClaimPrincipal([]string{"iss"}, &matcherpb.ValueMatcher{MatchPattern: &matcherpb.ValueMatcher_StringMatch{StringMatch: iss}}),
				jwtClaimPrincipal([]string{"sub"}, &matcherpb.ValueMatcher{MatchPattern: &matcherpb.ValueMatcher_StringMatch{StringMatch: sub}}),
			}}}})
		}
		if len(or) == 1 {
			return or[0], nil
		}
		return &rbacpb.Principal{Identifier: &rbacpb.Principal_OrIds{OrIds: &rbacpb.Principal_Set{Ids: or}}}, nil
	case c.key == "request.auth.audiences":
		return jwtClaimPrincipal([]string{"aud"}, listOrValue(stringOrValues(values))), nil
	case c.key == "request.auth.presenter":
		return jwtClaimPrincipal([]string{"azp"}, listOrValue(stringOrValues(values))), nil
	case strings.HasPrefix(c.key, attrRequestClaim):
		claims, err := nestedNames(strings.TrimPrefix(c.key, attrRequestClaim))
		if err != nil {
			return nil, err
		}
		return jwtClaimPrincipal(claims, listOrValue(stringOrValues(values))), nil
	}
	return nil, fmt.Errorf("%s is not a source attribute", c.key)
}

// requestPrincipalMatchers splits "<iss>/<sub>" at its last '/' (issuers are URLs) into
// matchers for the two claims, with Istio's wildcards.
func requestPrincipalMatchers(v string) (iss, sub *matcherpb.StringMatcher) {
	matchAny := regexMatcher(".+")
	i := strings.LastIndex(v, "/")
	found := i >= 0
	issV, subV := v, ""
	if found {
		issV, subV = v[:i], v[i+1:]
	}
	switch {
	case v == "*":
		return matchAny, matchAny
	case strings.HasPrefix(v, "*"):
		if !found {
			return matchAny, suffixMatcher(strings.TrimPrefix(v, "*"), false)
		}
		if issV == "*" {
			return matchAny, exactMatcher(subV, false)
		}
		return suffixMatcher(strings.TrimPrefix(issV, "*"), false), exactMatcher(subV, false)
	case strings.HasSuffix(v, "*"):
		if !found {
			return prefixMatcher(strings.TrimSuffix(v, "*"), false), matchAny
		}
		if subV == "*" {
			return exactMatcher(issV, false), matchAny
		}
		return exactMatcher(issV, false), prefixMatcher(strings.TrimSuffix(subV, "*"), false)
	}
	return exactMatcher(issV, false), exactMatcher(subV, false)
}

func jwtClaimPrincipal(claims []string, v *matcherpb.ValueMatcher) *rbacpb.Principal {
	path := []*matcherpb.MetadataMatcher_PathSegment{{Segment: &matcherpb.MetadataMatcher_PathSegment_Key{Key: jwtPayloadKey}}}
	for _, c := range claims {
		path = append(path, &matcherpb.MetadataMatcher_PathSegment{Segment: &matcherpb.MetadataMatcher_PathSegment_Key{Key: c}})
	}
	return &rbacpb.Principal{Identifier: &rbacpb.Principal_Metadata{Metadata: &matcherpb.MetadataMatcher{ //nolint:staticcheck // SA1019: Istio's wire form (sourced_metadata is newer than many Envoys)
		Filter: JWTAuthnFilter, Path: path, Value: v,
	}}}
}

// listOrValue matches a claim that is either a list with a matching element or a
// matching value itself (Istio's extended JWT matcher).
func listOrValue(v *matcherpb.ValueMatcher) *matcherpb.ValueMatcher {
	return &matcherpb.ValueMatcher{MatchPattern: &matcherpb.ValueMatcher_OrMatch{OrMatch: &matcherpb.OrMatcher{
		ValueMatchers: []*matcherpb.ValueMatcher{
			{MatchPattern: &matcherpb.ValueMatcher_ListMatch{ListMatch: &matcherpb.ListMatcher{MatchPattern: &matcherpb.ListMatcher_OneOf{OneOf: v}}}},
			v,
		},
	}}}
}

func stringOrValues(values []string) *matcherpb.ValueMatcher {
	ms := make([]*matcherpb.ValueMatcher, 0, len(values))
	for _, v := range values {
		ms = append(ms, stringValue(v))
	}
	return orValues(ms)
}

func orValues(ms []*matcherpb.ValueMatcher) *matcherpb.ValueMatcher {
	if len(ms) == 1 {
		return ms[0]
	}
	return &matcherpb.ValueMatcher{MatchPattern: &matcherpb.ValueMatcher_OrMatch{OrMatch: &matcherpb.OrMatcher{ValueMatchers: ms}}}
}

func stringValue(v string) *matcherpb.ValueMatcher {
	return &matcherpb.ValueMatcher{MatchPattern: &matcherpb.ValueMatcher_StringMatch{StringMatch: authzStringMatcher(v, "")}}
}

func metadataPath(keys ...string) []*matcherpb.MetadataMatcher_PathSegment {
	out := make([]*matcherpb.MetadataMatcher_PathSegment, 0, len(keys))
	for _, k := range keys {
		out = append(out, &matcherpb.MetadataMatcher_PathSegment{Segment: &matcherpb.MetadataMatcher_PathSegment_Key{Key: k}})
	}
	return out
}

func authenticated(m *matcherpb.StringMatcher) *rbacpb.Principal {
	return &rbacpb.Principal{Identifier: &rbacpb.Principal_Authenticated_{Authenticated: &rbacpb.Principal_Authenticated{PrincipalName: m}}}
}

func permAny() *rbacpb.Permission { return &rbacpb.Permission{Rule: &rbacpb.Permission_Any{Any: true}} }

func princAny() *rbacpb.Principal {
	return &rbacpb.Principal{Identifier: &rbacpb.Principal_Any{Any: true}}
}

// authzStringMatcher is Istio's StringMatcherWithPrefix: "*" any non-empty value, "*x" suffix,
// "x*" prefix, else exact; prefix is prepended (spiffe:// for principals).
func authzStringMatcher(v, prefix string) *matcherpb.StringMatcher {
	switch {
	case v == "*":
		return regexMatcher(".+")
	case strings.HasPrefix(v, "*"):
		if prefix == "" {
			return suffixMatcher(strings.TrimPrefix(v, "*"), false)
		}
		return regexMatcher(prefix + ".*" + regexp.QuoteMeta(strings.TrimPrefix(v, "*")))
	case strings.HasSuffix(v, "*"):
		return prefixMatcher(prefix+strings.TrimSuffix(v, "*"), false)
	}
	return exactMatcher(prefix+v, false)
}

// authzHeaderMatcher is Istio's HeaderMatcher/HostMatcher: "*" present, "*x" suffix, "x*"
// prefix, else exact; hosts ignore case.
func authzHeaderMatcher(name, v string, ignoreCase bool) *routepb.HeaderMatcher {
	h := &routepb.HeaderMatcher{Name: name}
	switch {
	case v == "*":
		h.HeaderMatchSpecifier = &routepb.HeaderMatcher_PresentMatch{PresentMatch: true}
	case strings.HasPrefix(v, "*"):
		h.HeaderMatchSpecifier = &routepb.HeaderMatcher_StringMatch{StringMatch: suffixMatcher(v[1:], ignoreCase)}
	case strings.HasSuffix(v, "*"):
		h.HeaderMatchSpecifier = &routepb.HeaderMatcher_StringMatch{StringMatch: prefixMatcher(v[:len(v)-1], ignoreCase)}
	default:
		h.HeaderMatchSpecifier = &routepb.HeaderMatcher_StringMatch{StringMatch: exactMatcher(v, ignoreCase)}
	}
	return h
}

func regexMatcher(re string) *matcherpb.StringMatcher {
	return &matcherpb.StringMatcher{MatchPattern: &matcherpb.StringMatcher_SafeRegex{SafeRegex: &matcherpb.RegexMatcher{Regex: re}}}
}

func prefixMatcher(p string, ignoreCase bool) *matcherpb.StringMatcher {
	return &matcherpb.StringMatcher{IgnoreCase: ignoreCase, MatchPattern: &matcherpb.StringMatcher_Prefix{Prefix: p}}
}

func suffixMatcher(s string, ignoreCase bool) *matcherpb.StringMatcher {
	return &matcherpb.StringMatcher{IgnoreCase: ignoreCase, MatchPattern: &matcherpb.StringMatcher_Suffix{Suffix: s}}
}

func exactMatcher(s string, ignoreCase bool) *matcherpb.StringMatcher {
	return &matcherpb.StringMatcher{IgnoreCase: ignoreCase, MatchPattern: &matcherpb.StringMatcher_Exact{Exact: s}}
}

// cidrRange is Istio's AddrStrToCidrRange: an address is its own /32 or /128.
func cidrRange(v string) (*corepb.CidrRange, error) {
	var p netip.Prefix
	var err error
	if strings.Contains(v, "/") {
		p, err = netip.ParsePrefix(v)
	} else {
		var a netip.Addr
		if a, err = netip.ParseAddr(v); err == nil {
			p = netip.PrefixFrom(a, a.BitLen())
		}
	}
	if err != nil {
		return nil, fmt.Errorf("bad IP or CIDR %q: %w", v, err)
	}
	return &corepb.CidrRange{AddressPrefix: p.Addr().String(), PrefixLen: wrapperspb.UInt32(uint32(p.Bits()))}, nil
}

func parsePort(v string) (uint32, error) {
	var n uint32
	if _, err := fmt.Sscanf(v, "%d", &n); err != nil || n > 65535 || fmt.Sprint(n) != v {
		return 0, fmt.Errorf("invalid port %s", v)
	}
	return n, nil
}

func nameInBrackets(s string) (string, error) {
	if !strings.HasPrefix(s, "[") || !strings.HasSuffix(s, "]") {
		return "", fmt.Errorf("expecting format [<NAME>], but found %s", s)
	}
	return s[1 : len(s)-1], nil
}

// nestedNames is Istio's extractNameInNestedBrackets: "[a][b]" → a, b; "[a.b]" → "a.b";
// anything else is one name in brackets.
func nestedNames(s string) ([]string, error) {
	var out []string
	for rest := s; rest != ""; {
		end := strings.IndexAny(rest[1:], "[]")
		if rest[0] != '[' || end < 0 || rest[1+end] != ']' {
			name, err := nameInBrackets(s)
			if err != nil {
				return nil, err
			}
			return []string{name}, nil
		}
		out = append(out, rest[1:1+end])
		rest = rest[end+2:]
	}
	return out, nil
}
