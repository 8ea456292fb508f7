package xdsclient

import (
	"strings"
	"testing"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacpb "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	jwtpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	rbachttppb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	routerpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	rbactcppb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	tcppb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	uritemplatepb "github.com/envoyproxy/go-control-plane/envoy/extensions/path/match/uri_template/v3"
	matcherpb "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

func anyOf(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// authListener is an inbound listener with an HTTP chain carrying filters before the
// router and a TCP chain carrying network filters before tcp_proxy.
func authListener(t *testing.T, httpFilters []*hcmpb.HttpFilter, netFilters []*listenerpb.Filter) *listenerpb.Listener {
	t.Helper()
	hcm := &hcmpb.HttpConnectionManager{
		StatPrefix: "inbound_0.0.0.0_8000",
		RouteSpecifier: &hcmpb.HttpConnectionManager_Rds{Rds: &hcmpb.Rds{RouteConfigName: "r",
			ConfigSource: &corepb.ConfigSource{ConfigSourceSpecifier: &corepb.ConfigSource_Ads{Ads: &corepb.AggregatedConfigSource{}}}}},
		HttpFilters: append(httpFilters, &hcmpb.HttpFilter{Name: "envoy.filters.http.router", ConfigType: &hcmpb.HttpFilter_TypedConfig{TypedConfig: anyOf(t, &routerpb.Router{})}}),
	}
	tcp := &listenerpb.Filter{Name: "envoy.filters.network.tcp_proxy", ConfigType: &listenerpb.Filter_TypedConfig{TypedConfig: anyOf(t, &tcppb.TcpProxy{
		StatPrefix: "tcp", ClusterSpecifier: &tcppb.TcpProxy_Cluster{Cluster: "inbound|9000||"},
	})}}
	return &listenerpb.Listener{
		Name:    "virtualInbound",
		Address: &corepb.Address{Address: &corepb.Address_SocketAddress{SocketAddress: &corepb.SocketAddress{Address: "127.0.181.10", PortSpecifier: &corepb.SocketAddress_PortValue{PortValue: 15006}}}},
		FilterChains: []*listenerpb.FilterChain{
			{FilterChainMatch: &listenerpb.FilterChainMatch{DestinationPort: wrapperspb.UInt32(8000)},
				Filters: []*listenerpb.Filter{{Name: "envoy.filters.network.http_connection_manager", ConfigType: &listenerpb.Filter_TypedConfig{TypedConfig: anyOf(t, hcm)}}}},
			{FilterChainMatch: &listenerpb.FilterChainMatch{DestinationPort: wrapperspb.UInt32(9000)}, Filters: append(netFilters, tcp)},
		},
	}
}

func httpRBAC(t *testing.T, r *rbachttppb.RBAC) *hcmpb.HttpFilter {
	t.Helper()
	return &hcmpb.HttpFilter{Name: "envoy.filters.http.rbac", ConfigType: &hcmpb.HttpFilter_TypedConfig{TypedConfig: anyOf(t, r)}}
}

func pathPerm(m *matcherpb.StringMatcher) *rbacpb.Permission {
	return &rbacpb.Permission{Rule: &rbacpb.Permission_UrlPath{UrlPath: &matcherpb.PathMatcher{Rule: &matcherpb.PathMatcher_Path{Path: m}}}}
}

var anyPrincipal = &rbacpb.Principal{Identifier: &rbacpb.Principal_Any{Any: true}}

func TestDecodeAuthFilters(t *testing.T) {
	tmpl := &corepb.TypedExtensionConfig{Name: "uri-template", TypedConfig: anyOf(t, &uritemplatepb.UriTemplateMatchConfig{PathTemplate: "/api/*/items/**"})}
	rbac := &rbachttppb.RBAC{
		Rules: &rbacpb.RBAC{Action: rbacpb.RBAC_DENY, Policies: map[string]*rbacpb.Policy{
			"ns[foo]-policy[b]-rule[0]": {Permissions: []*rbacpb.Permission{pathPerm(&matcherpb.StringMatcher{MatchPattern: &matcherpb.StringMatcher_Prefix{Prefix: "/admin"}})}, Principals: []*rbacpb.Principal{anyPrincipal}},
			"ns[foo]-policy[a]-rule[0]": {Permissions: []*rbacpb.Permission{{Rule: &rbacpb.Permission_UriTemplate{UriTemplate: tmpl}}}, Principals: []*rbacpb.Principal{{Identifier: &rbacpb.Principal_RemoteIp{RemoteIp: &corepb.CidrRange{AddressPrefix: "10.0.0.0", PrefixLen: wrapperspb.UInt32(8)}}}}},
		}},
		ShadowRules:           &rbacpb.RBAC{Action: rbacpb.RBAC_ALLOW},
		ShadowRulesStatPrefix: "istio_dry_run_allow_",
	}
	jwt := &jwtpb.JwtAuthentication{
		Providers: map[string]*jwtpb.JwtProvider{"origins-0": {Issuer: "iss", PayloadInMetadata: "payload", Forward: true,
			JwksSourceSpecifier: &jwtpb.JwtProvider_RemoteJwks{RemoteJwks: &jwtpb.RemoteJwks{HttpUri: &corepb.HttpUri{
				Uri: "https://keys.example.com/jwks", HttpUpstreamType: &corepb.HttpUri_Cluster{Cluster: "outbound|443||keys.example.com"}, Timeout: durationpb.New(5e9)}}}}},
		Rules: []*jwtpb.RequirementRule{{Match: &routepb.RouteMatch{PathSpecifier: &routepb.RouteMatch_Prefix{Prefix: "/"}},
			RequirementType: &jwtpb.RequirementRule_Requires{Requires: &jwtpb.JwtRequirement{RequiresType: &jwtpb.JwtRequirement_RequiresAny{RequiresAny: &jwtpb.JwtRequirementOrList{
				Requirements: []*jwtpb.JwtRequirement{
					{RequiresType: &jwtpb.JwtRequirement_ProviderName{ProviderName: "origins-0"}},
					{RequiresType: &jwtpb.JwtRequirement_AllowMissing{AllowMissing: &emptypb.Empty{}}},
				}}}}}}},
		BypassCorsPreflight: true,
	}
	ext := &extauthzpb.ExtAuthz{Services: &extauthzpb.ExtAuthz_HttpService{HttpService: &extauthzpb.HttpService{
		PathPrefix: "/check", ServerUri: &corepb.HttpUri{Uri: "http://ext", HttpUpstreamType: &corepb.HttpUri_Cluster{Cluster: "outbound|8000||ext"}, Timeout: durationpb.New(2e9)},
	}}, FailureModeAllow: true}
	l := authListener(t,
		[]*hcmpb.HttpFilter{
			{Name: "envoy.filters.http.ext_authz", ConfigType: &hcmpb.HttpFilter_TypedConfig{TypedConfig: anyOf(t, ext)}},
			{Name: "envoy.filters.http.jwt_authn", ConfigType: &hcmpb.HttpFilter_TypedConfig{TypedConfig: anyOf(t, jwt)}},
			httpRBAC(t, rbac),
		},
		[]*listenerpb.Filter{{Name: "envoy.filters.network.rbac", ConfigType: &listenerpb.Filter_TypedConfig{TypedConfig: anyOf(t, &rbactcppb.RBAC{
			StatPrefix: "tcp.", Rules: &rbacpb.RBAC{Action: rbacpb.RBAC_ALLOW},
		})}}})
	got, err := DecodeListener(l)
	if err != nil {
		t.Fatal(err)
	}
	auth := got.FilterChains[0].HTTP.Auth
	if len(auth) != 3 || auth[0].ExtAuthz == nil || auth[1].JWT == nil || auth[2].RBAC == nil {
		t.Fatalf("http auth filters %+v", auth)
	}
	r := auth[2].RBAC
	if r.Rules.Action != resource.RBACDeny || len(r.Rules.Policies) != 2 || r.Rules.Policies[0].Name != "ns[foo]-policy[a]-rule[0]" {
		t.Errorf("rules %+v (policies must be in name order)", r.Rules)
	}
	if p := r.Rules.Policies[0].Permissions[0]; p.Kind != resource.PermURITemplate || p.TemplateRegex == nil || !p.TemplateRegex.MatchString("/api/v1/items/a/b") {
		t.Errorf("uri template %+v", p)
	}
	if r.ShadowRules == nil || r.ShadowRulesStatPrefix != "istio_dry_run_allow_" {
		t.Errorf("shadow %+v %q", r.ShadowRules, r.ShadowRulesStatPrefix)
	}
	j := auth[1].JWT
	if p := j.Providers["origins-0"]; p == nil || p.RemoteJWKS == nil || p.RemoteJWKS.CacheDuration.Minutes() != 5 || p.ClockSkew.Seconds() != 60 || !p.Forward {
		t.Errorf("provider %+v", j.Providers["origins-0"])
	}
	if e := auth[0].ExtAuthz; e.PathPrefix != "/check" || e.StatusOnError != 403 || !e.FailureModeAllow || e.Cluster != "outbound|8000||ext" || e.Timeout.Seconds() != 2 {
		t.Errorf("ext_authz %+v", e)
	}
	if tcp := got.FilterChains[1]; len(tcp.Auth) != 1 || tcp.Auth[0].RBAC == nil || tcp.Auth[0].RBAC.StatPrefix != "tcp." || tcp.TCP == nil {
		t.Errorf("tcp chain %+v", tcp)
	}
}

// Configurations Lucid cannot run are refused with the field named (NACK).
func TestDecodeAuthFiltersNACK(t *testing.T) {
	policy := func(p *rbacpb.Permission) *rbachttppb.RBAC {
		return &rbachttppb.RBAC{Rules: &rbacpb.RBAC{Policies: map[string]*rbacpb.Policy{"p": {Permissions: []*rbacpb.Permission{p}, Principals: []*rbacpb.Principal{anyPrincipal}}}}}
	}
	tmpl := func(s string) *rbacpb.Permission {
		return &rbacpb.Permission{Rule: &rbacpb.Permission_UriTemplate{UriTemplate: &corepb.TypedExtensionConfig{Name: "t", TypedConfig: anyOf(t, &uritemplatepb.UriTemplateMatchConfig{PathTemplate: s})}}}
	}
	for _, tc := range []struct {
		name string
		f    *hcmpb.HttpFilter
		want string
	}{
		{"bad regex", httpRBAC(t, policy(pathPerm(&matcherpb.StringMatcher{MatchPattern: &matcherpb.StringMatcher_SafeRegex{SafeRegex: &matcherpb.RegexMatcher{Regex: "("}}}))),
			`http_filters[0].typed_config.rules.policies[p].permissions[0].url_path.path.safe_regex: invalid regex`},
		{"operator after **", httpRBAC(t, policy(tmpl("/a/**/b/*"))), "uri_template.path_template: \"/a/**/b/*\": an operator after **"},
		{"template variable", httpRBAC(t, policy(tmpl("/a/{id}"))), "variables are not supported"},
		{"filter state principal", httpRBAC(t, &rbachttppb.RBAC{Rules: &rbacpb.RBAC{Policies: map[string]*rbacpb.Policy{"p": {
			Permissions: []*rbacpb.Permission{{Rule: &rbacpb.Permission_Any{Any: true}}},
			Principals:  []*rbacpb.Principal{{Identifier: &rbacpb.Principal_FilterState{FilterState: &matcherpb.FilterStateMatcher{Key: "k", Matcher: &matcherpb.FilterStateMatcher_StringMatch{StringMatch: &matcherpb.StringMatcher{MatchPattern: &matcherpb.StringMatcher_Exact{Exact: "x"}}}}}}},
		}}}}), "principals[0].identifier: *rbacv3.Principal_FilterState is not supported"},
		{"jwt without keys", &hcmpb.HttpFilter{Name: "envoy.filters.http.jwt_authn", ConfigType: &hcmpb.HttpFilter_TypedConfig{TypedConfig: anyOf(t, &jwtpb.JwtAuthentication{
			Providers: map[string]*jwtpb.JwtProvider{"p": {Issuer: "i"}}})}}, "JwtProvider.JwksSourceSpecifier: value is required"},
		{"jwt unknown provider", &hcmpb.HttpFilter{Name: "envoy.filters.http.jwt_authn", ConfigType: &hcmpb.HttpFilter_TypedConfig{TypedConfig: anyOf(t, &jwtpb.JwtAuthentication{
			Providers: map[string]*jwtpb.JwtProvider{"p": {Issuer: "i", JwksSourceSpecifier: &jwtpb.JwtProvider_LocalJwks{LocalJwks: &corepb.DataSource{Specifier: &corepb.DataSource_InlineString{InlineString: "{}"}}}}},
			Rules: []*jwtpb.RequirementRule{{Match: &routepb.RouteMatch{PathSpecifier: &routepb.RouteMatch_Prefix{Prefix: "/"}},
				RequirementType: &jwtpb.RequirementRule_Requires{Requires: &jwtpb.JwtRequirement{RequiresType: &jwtpb.JwtRequirement_ProviderName{ProviderName: "q"}}}}},
		})}}, `rules[0].requires.provider_name: unknown provider "q"`},
		{"ext_authz without service", &hcmpb.HttpFilter{Name: "envoy.filters.http.ext_authz", ConfigType: &hcmpb.HttpFilter_TypedConfig{TypedConfig: anyOf(t, &extauthzpb.ExtAuthz{})}}, "services: http_service or grpc_service required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeListener(authListener(t, []*hcmpb.HttpFilter{tc.f}, nil))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
