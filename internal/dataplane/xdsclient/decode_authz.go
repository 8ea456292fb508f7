package xdsclient

// Decoding of the filters that decide whether a request may pass: RBAC (HTTP and network),
// jwt_authn (decode_jwt.go) and ext_authz (decode_extauthz.go), into resource.AuthFilter.

import (
	"fmt"
	"net/netip"
	"regexp"
	"sort"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacpb "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	rbachttppb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	rbactcppb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	uritemplatepb "github.com/envoyproxy/go-control-plane/envoy/extensions/path/match/uri_template/v3"
	matcherpb "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/lucid-mesh/lucid/internal/contract/pathtemplate"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// Type URLs of the authorization filters; the type decides, whatever the filter's name.
const (
	rbacHTTPTypeURL        = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
	rbacNetworkTypeURL     = "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC"
	jwtAuthnTypeURL        = "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication"
	extAuthzHTTPTypeURL    = "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz"
	extAuthzNetworkTypeURL = "type.googleapis.com/envoy.extensions.filters.network.ext_authz.v3.ExtAuthz"
	uriTemplateTypeURL     = "type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig"
)

// isAuthHTTPFilter reports whether an HCM http filter is one of the authorization filters.
func isAuthHTTPFilter(f *hcmpb.HttpFilter) bool {
	switch f.GetTypedConfig().GetTypeUrl() {
	case rbacHTTPTypeURL, jwtAuthnTypeURL, extAuthzHTTPTypeURL:
		return true
	}
	return false
}

// decodeAuthHTTPFilter decodes an authorization http filter and appends it to h.Auth.
func decodeAuthHTTPFilter(h *resource.HTTPManager, f *hcmpb.HttpFilter) error {
	out := resource.AuthFilter{Name: f.GetName()}
	a := f.GetTypedConfig()
	var err error
	switch a.GetTypeUrl() {
	case rbacHTTPTypeURL:
		var m rbachttppb.RBAC
		if err = a.UnmarshalTo(&m); err == nil {
			out.RBAC, err = decodeHTTPRBAC(&m)
		}
	case jwtAuthnTypeURL:
		out.JWT, err = decodeJWTAuthn(a) // decode_jwt.go
	case extAuthzHTTPTypeURL:
		out.ExtAuthz, err = decodeHTTPExtAuthz(a) // decode_extauthz.go
	}
	if err != nil {
		return fmt.Errorf("typed_config.%w", err)
	}
	h.Auth = append(h.Auth, out)
	return nil
}

// isAuthNetworkFilter reports whether a network filter is RBAC or ext_authz.
func isAuthNetworkFilter(f *listenerpb.Filter) bool {
	switch f.GetTypedConfig().GetTypeUrl() {
	case rbacNetworkTypeURL, extAuthzNetworkTypeURL:
		return true
	}
	return false
}

// decodeAuthNetworkFilter decodes a network RBAC or ext_authz filter and appends it to
// c.Auth.
func decodeAuthNetworkFilter(c *resource.FilterChain, f *listenerpb.Filter) error {
	out := resource.AuthFilter{Name: f.GetName()}
	a := f.GetTypedConfig()
	var err error
	switch a.GetTypeUrl() {
	case rbacNetworkTypeURL:
		var m rbactcppb.RBAC
		if err = a.UnmarshalTo(&m); err == nil {
			out.RBAC, err = decodeNetworkRBAC(&m)
		}
	case extAuthzNetworkTypeURL:
		out.ExtAuthz, err = decodeNetworkExtAuthz(a) // decode_extauthz.go
	}
	if err != nil {
		return fmt.Errorf("typed_config.%w", err)
	}
	c.Auth = append(c.Auth, out)
	return nil
}

func decodeHTTPRBAC(m *rbachttppb.RBAC) (*resource.RBACFilter, error) {
	if err := validate(m); err != nil {
		return nil, err
	}
	switch {
	case m.GetMatcher() != nil:
		return nil, fmt.Errorf("matcher: not supported (use rules)")
	case m.GetShadowMatcher() != nil:
		return nil, fmt.Errorf("shadow_matcher: not supported (use shadow_rules)")
	}
	return decodeRBACRules(m.GetRules(), m.GetShadowRules(), m.GetShadowRulesStatPrefix(), "")
}

func decodeNetworkRBAC(m *rbactcppb.RBAC) (*resource.RBACFilter, error) {
	if err := validate(m); err != nil {
		return nil, err
	}
	switch {
	case m.GetMatcher() != nil:
		return nil, fmt.Errorf("matcher: not supported (use rules)")
	case m.GetShadowMatcher() != nil:
		return nil, fmt.Errorf("shadow_matcher: not supported (use shadow_rules)")
	case m.GetDelayDeny().AsDuration() > 0:
		return nil, fmt.Errorf("delay_deny: not supported")
	}
	return decodeRBACRules(m.GetRules(), m.GetShadowRules(), m.GetShadowRulesStatPrefix(), m.GetStatPrefix())
}

func decodeRBACRules(rules, shadow *rbacpb.RBAC, shadowPrefix, statPrefix string) (*resource.RBACFilter, error) {
	out := &resource.RBACFilter{ShadowRulesStatPrefix: shadowPrefix, StatPrefix: statPrefix}
	var err error
	if rules != nil {
		if out.Rules, err = decodeRBAC(rules); err != nil {
			return nil, fmt.Errorf("rules.%w", err)
		}
	}
	if shadow != nil {
		if out.ShadowRules, err = decodeRBAC(shadow); err != nil {
			return nil, fmt.Errorf("shadow_rules.%w", err)
		}
	}
	return out, nil
}

func decodeRBAC(r *rbacpb.RBAC) (*resource.RBAC, error) {
	out := &resource.RBAC{}
	switch r.GetAction() {
	case rbacpb.RBAC_ALLOW:
		out.Action = resource.RBACAllow
	case rbacpb.RBAC_DENY:
		out.Action = resource.RBACDeny
	case rbacpb.RBAC_LOG:
		out.Action = resource.RBACLog
	default:
		return nil, fmt.Errorf("action: %s is not supported", r.GetAction())
	}
	if r.GetAuditLoggingOptions() != nil {
		return nil, fmt.Errorf("audit_logging_options: not supported")
	}
	names := make([]string, 0, len(r.GetPolicies()))
	for name := range r.GetPolicies() {
		names = append(names, name)
	}
	sort.Strings(names) // Envoy evaluates policies in name order
	for _, name := range names {
		p := r.GetPolicies()[name]
		if p.GetCondition() != nil || p.GetCheckedCondition() != nil {
			return nil, fmt.Errorf("policies[%s].condition: CEL conditions are not supported", name)
		}
		pol := resource.RBACPolicy{Name: name}
		var err error
		if pol.Permissions, err = decodeAll("policies["+name+"].permissions", p.GetPermissions(), decodePermission); err != nil {
			return nil, err
		}
		if pol.Principals, err = decodeAll("policies["+name+"].principals", p.GetPrincipals(), decodePrincipal); err != nil {
			return nil, err
		}
		out.Policies = append(out.Policies, pol)
	}
	return out, nil
}

func decodePermission(p *rbacpb.Permission) (resource.Permission, error) {
	var out resource.Permission
	var err error
	switch r := p.GetRule().(type) {
	case *rbacpb.Permission_Any:
		out.Kind = resource.PermAny
	case *rbacpb.Permission_AndRules, *rbacpb.Permission_OrRules:
		field, set := "and_rules", p.GetAndRules()
		out.Kind = resource.PermAnd
		if _, ok := r.(*rbacpb.Permission_OrRules); ok {
			field, set, out.Kind = "or_rules", p.GetOrRules(), resource.PermOr
		}
		if out.Rules, err = decodeAll(field+".rules", set.GetRules(), decodePermission); err != nil {
			return out, err
		}
	case *rbacpb.Permission_NotRule:
		out.Kind = resource.PermNot
		d, err := decodePermission(r.NotRule)
		if err != nil {
			return out, fmt.Errorf("not_rule.%w", err)
		}
		out.Not = &d
	case *rbacpb.Permission_Header:
		out.Kind = resource.PermHeader
		if out.Header, err = decodeHeaderMatcher(r.Header); err != nil {
			return out, fmt.Errorf("header.%w", err)
		}
	case *rbacpb.Permission_UrlPath:
		out.Kind = resource.PermURLPath
		if out.String, err = decodePathMatcher(r.UrlPath); err != nil {
			return out, fmt.Errorf("url_path.%w", err)
		}
	case *rbacpb.Permission_UriTemplate:
		out.Kind = resource.PermURITemplate
		if out.Template, out.TemplateRegex, err = decodeURITemplate(r.UriTemplate); err != nil {
			return out, fmt.Errorf("uri_template.%w", err)
		}
	case *rbacpb.Permission_DestinationIp:
		out.Kind = resource.PermDestinationIP
		if out.CIDR, err = decodeCIDR(r.DestinationIp); err != nil {
			return out, fmt.Errorf("destination_ip.%w", err)
		}
	case *rbacpb.Permission_DestinationPort:
		out.Kind, out.Port = resource.PermDestinationPort, r.DestinationPort
	case *rbacpb.Permission_DestinationPortRange:
		out.Kind = resource.PermDestinationPortRange
		out.Port, out.PortEnd = uint32(r.DestinationPortRange.GetStart()), uint32(r.DestinationPortRange.GetEnd())
	case *rbacpb.Permission_RequestedServerName:
		out.Kind = resource.PermRequestedServerName
		if out.String, err = decodeStringMatcher(r.RequestedServerName); err != nil {
			return out, fmt.Errorf("requested_server_name.%w", err)
		}
	case *rbacpb.Permission_Metadata:
		out.Kind = resource.PermMetadata
		if out.Metadata, err = decodeMetadataMatcher(r.Metadata); err != nil { //nolint:staticcheck // SA1019: Istio still writes it
			return out, fmt.Errorf("metadata.%w", err)
		}
	case nil:
		return out, fmt.Errorf("rule: not set")
	default:
		return out, fmt.Errorf("rule: %T is not supported", r)
	}
	return out, nil
}

func decodePrincipal(p *rbacpb.Principal) (resource.Principal, error) {
	var out resource.Principal
	var err error
	switch r := p.GetIdentifier().(type) {
	case *rbacpb.Principal_Any:
		out.Kind = resource.PrincAny
	case *rbacpb.Principal_AndIds, *rbacpb.Principal_OrIds:
		field, set := "and_ids", p.GetAndIds()
		out.Kind = resource.PrincAnd
		if _, ok := r.(*rbacpb.Principal_OrIds); ok {
			field, set, out.Kind = "or_ids", p.GetOrIds(), resource.PrincOr
		}
		if out.Ids, err = decodeAll(field+".ids", set.GetIds(), decodePrincipal); err != nil {
			return out, err
		}
	case *rbacpb.Principal_NotId:
		out.Kind = resource.PrincNot
		d, err := decodePrincipal(r.NotId)
		if err != nil {
			return out, fmt.Errorf("not_id.%w", err)
		}
		out.Not = &d
	case *rbacpb.Principal_Authenticated_:
		out.Kind = resource.PrincAuthenticated
		if m := r.Authenticated.GetPrincipalName(); m != nil {
			sm, err := decodeStringMatcher(m)
			if err != nil {
				return out, fmt.Errorf("authenticated.principal_name.%w", err)
			}
			out.Authenticated = &sm
		}
	case *rbacpb.Principal_DirectRemoteIp, *rbacpb.Principal_RemoteIp, *rbacpb.Principal_SourceIp:
		field, cidr := "direct_remote_ip", p.GetDirectRemoteIp()
		out.Kind = resource.PrincDirectRemoteIP
		switch {
		case p.GetRemoteIp() != nil:
			field, cidr, out.Kind = "remote_ip", p.GetRemoteIp(), resource.PrincRemoteIP
		case p.GetSourceIp() != nil: //nolint:staticcheck // SA1019: Envoy still honours the deprecated field
			field, cidr, out.Kind = "source_ip", p.GetSourceIp(), resource.PrincSourceIP //nolint:staticcheck // SA1019: see above
		}
		if out.CIDR, err = decodeCIDR(cidr); err != nil {
			return out, fmt.Errorf("%s.%w", field, err)
		}
	case *rbacpb.Principal_Header:
		out.Kind = resource.PrincHeader
		if out.Header, err = decodeHeaderMatcher(r.Header); err != nil {
			return out, fmt.Errorf("header.%w", err)
		}
	case *rbacpb.Principal_UrlPath:
		out.Kind = resource.PrincURLPath
		if out.Path, err = decodePathMatcher(r.UrlPath); err != nil {
			return out, fmt.Errorf("url_path.%w", err)
		}
	case *rbacpb.Principal_Metadata:
		out.Kind = resource.PrincMetadata
		if out.Metadata, err = decodeMetadataMatcher(r.Metadata); err != nil { //nolint:staticcheck // SA1019: Istio still writes it
			return out, fmt.Errorf("metadata.%w", err)
		}
	case nil:
		return out, fmt.Errorf("identifier: not set")
	default:
		return out, fmt.Errorf("identifier: %T is not supported", r)
	}
	return out, nil
}

// decodeAll decodes a repeated field, naming the failing element.
func decodeAll[P, R any](field string, in []P, decode func(P) (R, error)) ([]R, error) {
	var out []R
	for i, x := range in {
		d, err := decode(x)
		if err != nil {
			return nil, fmt.Errorf("%s[%d].%w", field, i, err)
		}
		out = append(out, d)
	}
	return out, nil
}

func decodePathMatcher(m *matcherpb.PathMatcher) (resource.StringMatcher, error) {
	if m.GetPath() == nil {
		return resource.StringMatcher{}, fmt.Errorf("path: required")
	}
	sm, err := decodeStringMatcher(m.GetPath())
	if err != nil {
		return sm, fmt.Errorf("path.%w", err)
	}
	return sm, nil
}

// decodeCIDR converts a CidrRange into a masked prefix.
func decodeCIDR(c *corepb.CidrRange) (netip.Prefix, error) {
	ip, err := netip.ParseAddr(c.GetAddressPrefix())
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("address_prefix: %q is not an IP address", c.GetAddressPrefix())
	}
	bits := uint32(ip.BitLen())
	if c.GetPrefixLen() != nil {
		bits = c.GetPrefixLen().GetValue()
	}
	if bits > uint32(ip.BitLen()) {
		return netip.Prefix{}, fmt.Errorf("prefix_len: %d is out of range for %s", bits, ip)
	}
	p, err := ip.Prefix(int(bits))
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("prefix_len: %w", err)
	}
	return p, nil
}

func decodeMetadataMatcher(m *matcherpb.MetadataMatcher) (resource.MetadataMatcher, error) {
	out := resource.MetadataMatcher{Filter: m.GetFilter(), Invert: m.GetInvert()}
	for i, seg := range m.GetPath() {
		k := seg.GetKey()
		if k == "" {
			return out, fmt.Errorf("path[%d].key: required", i)
		}
		out.Path = append(out.Path, k)
	}
	v, err := decodeValueMatcher(m.GetValue())
	if err != nil {
		return out, fmt.Errorf("value.%w", err)
	}
	out.Value = v
	return out, nil
}

func decodeValueMatcher(m *matcherpb.ValueMatcher) (resource.ValueMatcher, error) {
	var out resource.ValueMatcher
	switch p := m.GetMatchPattern().(type) {
	case *matcherpb.ValueMatcher_NullMatch_:
		out.Kind = resource.ValueNull
	case *matcherpb.ValueMatcher_DoubleMatch:
		out.Kind = resource.ValueDouble
		switch d := p.DoubleMatch.GetMatchPattern().(type) {
		case *matcherpb.DoubleMatcher_Exact:
			out.Double = d.Exact
		case *matcherpb.DoubleMatcher_Range:
			out.IsRange, out.Range = true, [2]float64{d.Range.GetStart(), d.Range.GetEnd()}
		default:
			return out, fmt.Errorf("double_match.match_pattern: not set")
		}
	case *matcherpb.ValueMatcher_StringMatch:
		out.Kind = resource.ValueString
		sm, err := decodeStringMatcher(p.StringMatch)
		if err != nil {
			return out, fmt.Errorf("string_match.%w", err)
		}
		out.String = sm
	case *matcherpb.ValueMatcher_BoolMatch:
		out.Kind, out.Bool = resource.ValueBool, p.BoolMatch
	case *matcherpb.ValueMatcher_PresentMatch:
		out.Kind, out.Present = resource.ValuePresent, p.PresentMatch
	case *matcherpb.ValueMatcher_ListMatch:
		out.Kind = resource.ValueList
		one := p.ListMatch.GetOneOf()
		if one == nil {
			return out, fmt.Errorf("list_match.one_of: required")
		}
		v, err := decodeValueMatcher(one)
		if err != nil {
			return out, fmt.Errorf("list_match.one_of.%w", err)
		}
		out.OneOf = &v
	case *matcherpb.ValueMatcher_OrMatch:
		out.Kind = resource.ValueOr
		for i, sub := range p.OrMatch.GetValueMatchers() {
			v, err := decodeValueMatcher(sub)
			if err != nil {
				return out, fmt.Errorf("or_match.value_matchers[%d].%w", i, err)
			}
			out.Matchers = append(out.Matchers, v)
		}
	case nil:
		return out, fmt.Errorf("match_pattern: not set")
	default:
		return out, fmt.Errorf("match_pattern: %T is not supported", p)
	}
	return out, nil
}

// decodeURITemplate checks an envoy.path.match.uri_template config and compiles its
// template as Envoy does.
func decodeURITemplate(c *corepb.TypedExtensionConfig) (string, *regexp.Regexp, error) {
	if c.GetTypedConfig().GetTypeUrl() != uriTemplateTypeURL {
		return "", nil, fmt.Errorf("typed_config: %q is not supported (want %s)", c.GetTypedConfig().GetTypeUrl(), uriTemplateTypeURL)
	}
	var m uritemplatepb.UriTemplateMatchConfig
	if err := c.GetTypedConfig().UnmarshalTo(&m); err != nil {
		return "", nil, fmt.Errorf("typed_config: %w", err)
	}
	if err := validate(&m); err != nil {
		return "", nil, err
	}
	re, err := pathtemplate.Compile(m.GetPathTemplate())
	if err != nil {
		return "", nil, fmt.Errorf("path_template: %w", err)
	}
	return m.GetPathTemplate(), re, nil
}
