package xdsclient

import (
	"fmt"
	"sort"
	"strings"
	"time"

	jwtpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// Envoy's jwt_authn defaults.
const (
	defaultJWTClockSkew     = 60 * time.Second
	defaultJWKSCacheTimeout = 5 * time.Minute
	defaultJWKSFetchTimeout = time.Second
)

// decodeJWTAuthn converts an envoy.filters.http.jwt_authn JwtAuthentication.
func decodeJWTAuthn(a *anypb.Any) (*resource.JWTAuthn, error) {
	var m jwtpb.JwtAuthentication
	if err := a.UnmarshalTo(&m); err != nil {
		return nil, err
	}
	if err := validate(&m); err != nil {
		return nil, err
	}
	switch {
	case m.GetFilterStateRules() != nil:
		return nil, fmt.Errorf("filter_state_rules: not supported")
	case len(m.GetRequirementMap()) > 0:
		return nil, fmt.Errorf("requirement_map: not supported")
	}
	out := &resource.JWTAuthn{Providers: map[string]*resource.JWTProvider{}, BypassCORSPreflight: m.GetBypassCorsPreflight()}
	names := make([]string, 0, len(m.GetProviders()))
	for n := range m.GetProviders() {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p, err := decodeJWTProvider(n, m.GetProviders()[n])
		if err != nil {
			return nil, fmt.Errorf("providers[%s].%w", n, err)
		}
		out.Providers[n] = p
	}
	for i, r := range m.GetRules() {
		rule := resource.JWTRule{}
		switch {
		case r.GetMatch().GetPrefix() != "" || r.GetMatch().GetPath() != "":
			rule.Prefix, rule.Path = r.GetMatch().GetPrefix(), r.GetMatch().GetPath()
		default:
			return nil, fmt.Errorf("rules[%d].match: only prefix and path are supported", i)
		}
		if len(r.GetMatch().GetHeaders()) > 0 || len(r.GetMatch().GetQueryParameters()) > 0 {
			return nil, fmt.Errorf("rules[%d].match: header and query matches are not supported", i)
		}
		if r.GetRequirementName() != "" {
			return nil, fmt.Errorf("rules[%d].requirement_name: not supported", i)
		}
		if r.GetRequires() != nil {
			req, err := decodeJWTRequirement(r.GetRequires(), out.Providers)
			if err != nil {
				return nil, fmt.Errorf("rules[%d].requires.%w", i, err)
			}
			rule.Requires = req
		} else {
			rule.Requires = resource.JWTRequirement{Kind: resource.JWTNoRequirement}
		}
		out.Rules = append(out.Rules, rule)
	}
	return out, nil
}

func decodeJWTProvider(name string, p *jwtpb.JwtProvider) (*resource.JWTProvider, error) {
	switch {
	case p.GetSubjects() != nil:
		return nil, fmt.Errorf("subjects: not supported")
	case p.GetRequireExpiration():
		return nil, fmt.Errorf("require_expiration: not supported")
	case p.GetMaxLifetime() != nil:
		return nil, fmt.Errorf("max_lifetime: not supported")
	case p.GetHeaderInMetadata() != "" || p.GetFailedStatusInMetadata() != "":
		return nil, fmt.Errorf("header_in_metadata, failed_status_in_metadata: not supported")
	}
	out := &resource.JWTProvider{
		Name:                 name,
		Issuer:               p.GetIssuer(),
		Audiences:            p.GetAudiences(),
		FromParams:           p.GetFromParams(),
		FromCookies:          p.GetFromCookies(),
		Forward:              p.GetForward(),
		ForwardPayloadHeader: p.GetForwardPayloadHeader(),
		PayloadInMetadata:    p.GetPayloadInMetadata(),
		SpaceDelimitedClaims: p.GetNormalizePayloadInMetadata().GetSpaceDelimitedClaims(),
		ClockSkew:            defaultJWTClockSkew,
	}
	if p.GetClockSkewSeconds() != 0 {
		out.ClockSkew = time.Duration(p.GetClockSkewSeconds()) * time.Second
	}
	for _, h := range p.GetFromHeaders() {
		out.FromHeaders = append(out.FromHeaders, resource.JWTHeader{Name: strings.ToLower(h.GetName()), Prefix: h.GetValuePrefix()})
	}
	for i, c := range p.GetClaimToHeaders() {
		if len(c.GetClaimPath()) > 0 {
			return nil, fmt.Errorf("claim_to_headers[%d].claim_path: not supported (use claim_name)", i)
		}
		out.ClaimToHeaders = append(out.ClaimToHeaders, resource.JWTClaimHeader{Header: strings.ToLower(c.GetHeaderName()), Claim: c.GetClaimName()})
	}
	switch src := p.GetJwksSourceSpecifier().(type) {
	case *jwtpb.JwtProvider_LocalJwks:
		switch {
		case src.LocalJwks.GetInlineString() != "":
			out.LocalJWKS = src.LocalJwks.GetInlineString()
		case len(src.LocalJwks.GetInlineBytes()) > 0:
			out.LocalJWKS = string(src.LocalJwks.GetInlineBytes())
		case src.LocalJwks.GetFilename() != "":
			out.LocalJWKSFile = src.LocalJwks.GetFilename()
		default:
			return nil, fmt.Errorf("local_jwks: inline_string, inline_bytes or filename required")
		}
	case *jwtpb.JwtProvider_RemoteJwks:
		r := src.RemoteJwks
		if r.GetAsyncFetch() != nil || r.GetRetryPolicy() != nil {
			return nil, fmt.Errorf("remote_jwks: async_fetch and retry_policy are not supported")
		}
		out.RemoteJWKS = &resource.RemoteJWKS{
			URI:           r.GetHttpUri().GetUri(),
			Cluster:       r.GetHttpUri().GetCluster(),
			Timeout:       durationOr(r.GetHttpUri().GetTimeout(), defaultJWKSFetchTimeout),
			CacheDuration: durationOr(r.GetCacheDuration(), defaultJWKSCacheTimeout),
		}
	default:
		return nil, fmt.Errorf("jwks_source_specifier: remote_jwks or local_jwks required")
	}
	return out, nil
}

func decodeJWTRequirement(r *jwtpb.JwtRequirement, providers map[string]*resource.JWTProvider) (resource.JWTRequirement, error) {
	var out resource.JWTRequirement
	switch t := r.GetRequiresType().(type) {
	case *jwtpb.JwtRequirement_ProviderName:
		if providers[t.ProviderName] == nil {
			return out, fmt.Errorf("provider_name: unknown provider %q", t.ProviderName)
		}
		out.Kind, out.Provider = resource.JWTProviderName, t.ProviderName
	case *jwtpb.JwtRequirement_RequiresAny, *jwtpb.JwtRequirement_RequiresAll:
		field, reqs := "requires_any", r.GetRequiresAny().GetRequirements()
		out.Kind = resource.JWTRequiresAny
		if _, all := t.(*jwtpb.JwtRequirement_RequiresAll); all {
			field, reqs, out.Kind = "requires_all", r.GetRequiresAll().GetRequirements(), resource.JWTRequiresAll
		}
		for i, sub := range reqs {
			d, err := decodeJWTRequirement(sub, providers)
			if err != nil {
				return out, fmt.Errorf("%s.requirements[%d].%w", field, i, err)
			}
			out.Requirements = append(out.Requirements, d)
		}
	case *jwtpb.JwtRequirement_AllowMissing:
		out.Kind = resource.JWTAllowMissing
	case *jwtpb.JwtRequirement_AllowMissingOrFailed:
		out.Kind = resource.JWTAllowMissingOrFailed
	case nil:
		return out, fmt.Errorf("requires_type: not set")
	default:
		return out, fmt.Errorf("requires_type: %T is not supported", t)
	}
	return out, nil
}
