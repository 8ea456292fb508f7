package translate

// RequestAuthentication as Envoy's jwt_authn filter (pilot/pkg/security/authn
// convertToEnvoyJwtConfig): one provider "origins-<i>" per JWT rule (rules of every
// RequestAuthentication that applies, sorted by issuer), each "the provider or no token"
// (allow_missing), so a request without a token passes and one with a bad token is refused.

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	jwtpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"
	securityv1beta1 "istio.io/api/security/v1beta1"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// jwtFilter is the jwt_authn filter for the RequestAuthentications that apply, or nil.
func jwtFilter(m *model.Mesh, ras []*model.RequestAuthn) *hcmpb.HttpFilter {
	var rules []*securityv1beta1.JWTRule
	for _, ra := range ras {
		for _, r := range ra.Spec.GetJwtRules() {
			if r != nil {
				rules = append(rules, r)
			}
		}
	}
	if len(rules) == 0 {
		return nil
	}
	slices.SortStableFunc(rules, func(a, b *securityv1beta1.JWTRule) int { return strings.Compare(a.GetIssuer(), b.GetIssuer()) })
	cfg := &jwtpb.JwtAuthentication{Providers: map[string]*jwtpb.JwtProvider{}, BypassCorsPreflight: true}
	var inner, outer []*jwtpb.JwtRequirement
	for i, r := range rules {
		name := fmt.Sprintf("origins-%d", i)
		cfg.Providers[name] = jwtProvider(m, r)
		provider := &jwtpb.JwtRequirement{RequiresType: &jwtpb.JwtRequirement_ProviderName{ProviderName: name}}
		inner = append(inner, &jwtpb.JwtRequirement{RequiresType: &jwtpb.JwtRequirement_RequiresAny{RequiresAny: &jwtpb.JwtRequirementOrList{
			Requirements: []*jwtpb.JwtRequirement{provider, {RequiresType: &jwtpb.JwtRequirement_AllowMissing{AllowMissing: &emptypb.Empty{}}}},
		}}})
		outer = append(outer, &jwtpb.JwtRequirement{RequiresType: &jwtpb.JwtRequirement_ProviderName{ProviderName: name}})
	}
	requires := inner[0]
	if len(inner) > 1 {
		// Any provider alone, or each provider's token valid when present.
		outer = append(outer, &jwtpb.JwtRequirement{RequiresType: &jwtpb.JwtRequirement_RequiresAll{RequiresAll: &jwtpb.JwtRequirementAndList{Requirements: inner}}})
		requires = &jwtpb.JwtRequirement{RequiresType: &jwtpb.JwtRequirement_RequiresAny{RequiresAny: &jwtpb.JwtRequirementOrList{Requirements: outer}}}
	}
	cfg.Rules = []*jwtpb.RequirementRule{{
		Match:           &routepb.RouteMatch{PathSpecifier: &routepb.RouteMatch_Prefix{Prefix: "/"}},
		RequirementType: &jwtpb.RequirementRule_Requires{Requires: requires},
	}}
	return &hcmpb.HttpFilter{Name: JWTAuthnFilter, ConfigType: &hcmpb.HttpFilter_TypedConfig{TypedConfig: deterministicAny(cfg)}}
}

// jwtProvider is one JWT rule as a provider. Keys: inline jwks; a file:// jwksUri (Lucid,
// local mode) as a local file; an http(s) jwksUri fetched by the proxy (remote_jwks, the
// cluster of its host when the mesh knows it).
func jwtProvider(m *model.Mesh, r *securityv1beta1.JWTRule) *jwtpb.JwtProvider {
	p := &jwtpb.JwtProvider{
		Issuer:               r.GetIssuer(),
		Audiences:            r.GetAudiences(),
		Forward:              r.GetForwardOriginalToken(),
		ForwardPayloadHeader: r.GetOutputPayloadToHeader(),
		PayloadInMetadata:    jwtPayloadKey,
		NormalizePayloadInMetadata: &jwtpb.JwtProvider_NormalizePayload{
			SpaceDelimitedClaims: spaceDelimitedClaims(r.GetSpaceDelimitedClaims()),
		},
		FromParams:  r.GetFromParams(),
		FromCookies: r.GetFromCookies(),
	}
	for _, c := range r.GetOutputClaimToHeaders() {
		p.ClaimToHeaders = append(p.ClaimToHeaders, &jwtpb.JwtClaimToHeader{HeaderName: c.GetHeader(), ClaimName: c.GetClaim()})
	}
	for _, h := range r.GetFromHeaders() {
		p.FromHeaders = append(p.FromHeaders, &jwtpb.JwtHeader{Name: h.GetName(), ValuePrefix: h.GetPrefix()})
	}
	timeout := durationpb.New(5e9)
	if r.GetTimeout() != nil {
		timeout = r.GetTimeout()
	}
	u, _ := url.Parse(r.GetJwksUri())
	switch {
	case r.GetJwks() != "":
		p.JwksSourceSpecifier = &jwtpb.JwtProvider_LocalJwks{LocalJwks: &corepb.DataSource{Specifier: &corepb.DataSource_InlineString{InlineString: r.GetJwks()}}}
	case u != nil && u.Scheme == "file":
		p.JwksSourceSpecifier = &jwtpb.JwtProvider_LocalJwks{LocalJwks: &corepb.DataSource{Specifier: &corepb.DataSource_Filename{Filename: u.Path}}}
	case u != nil && u.Host != "":
		p.JwksSourceSpecifier = &jwtpb.JwtProvider_RemoteJwks{RemoteJwks: &jwtpb.RemoteJwks{
			HttpUri:       &corepb.HttpUri{Uri: r.GetJwksUri(), HttpUpstreamType: &corepb.HttpUri_Cluster{Cluster: jwksCluster(m, u)}, Timeout: timeout},
			CacheDuration: durationpb.New(300e9),
		}}
	default:
		// No key source (validation requires issuer or jwksUri; Istio would discover the
		// issuer's keys through OpenID discovery, which Lucid does not do): an empty key
		// set, so every token is refused.
		p.JwksSourceSpecifier = &jwtpb.JwtProvider_LocalJwks{LocalJwks: &corepb.DataSource{Specifier: &corepb.DataSource_InlineString{InlineString: `{"keys":[]}`}}}
	}
	return p
}

// jwksCluster is the outbound cluster of the key server (Istio's BuildSubsetKey when the
// mesh does not know the host: the proxy fetches the URI directly either way).
func jwksCluster(m *model.Mesh, u *url.URL) string {
	port := uint32(80)
	if u.Scheme == "https" {
		port = 443
	}
	if p, err := strconv.ParseUint(u.Port(), 10, 16); err == nil {
		port = uint32(p)
	}
	if _, c, err := lookupCluster(m, u.Hostname(), port); err == nil {
		return c
	}
	return ClusterName("outbound", port, "", u.Hostname())
}

// spaceDelimitedClaims is Istio's list: the rule's claims plus scope and permission.
func spaceDelimitedClaims(extra []string) []string {
	out := []string{"permission", "scope"}
	if extra == nil {
		return out
	}
	for _, c := range extra {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}
