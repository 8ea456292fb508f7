package translate

// The CUSTOM action: per extension provider (meshConfig.extensionProviders), an RBAC
// filter whose shadow rules are the CUSTOM policies' rules (their match is recorded as
// dynamic metadata), then an ext_authz filter enabled only when one of them matched
// (pilot/pkg/security/authz/builder/extauthz.go). A provider that is missing or invalid,
// or several providers on one workload, make deny rules instead: the policies fail closed.

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacpb "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	extauthzpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	rbachttppb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	extauthztcppb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/ext_authz/v3"
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	rbactcppb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	matcherpb "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typepb "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// builtExtAuthz is one provider's ext_authz filters (tcp is nil for an HTTP provider).
type builtExtAuthz struct {
	http *extauthzpb.ExtAuthz
	tcp  *extauthztcppb.ExtAuthz
}

// customGroups groups CUSTOM policies by provider, sorted by provider name; dry-run
// CUSTOM policies are left out (Lucid does not support them; analyze says so).
func customGroups(policies []*model.AuthzPolicy) ([]string, map[string][]*model.AuthzPolicy) {
	groups := map[string][]*model.AuthzPolicy{}
	for _, ap := range policies {
		if ap.DryRun {
			continue
		}
		name := ap.Spec.GetProvider().GetName()
		groups[name] = append(groups[name], ap)
	}
	names := make([]string, 0, len(groups))
	for n := range groups {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, groups
}

// customProvider is one provider's CUSTOM policies built for a chain: their rules (DENY
// action, the provider's name prefix), and its ext_authz config or why it cannot be used.
type customProvider struct {
	name  string
	rules *rbacpb.RBAC
	ext   *builtExtAuthz
	err   error
}

func customProviders(m *model.Mesh, policies []*model.AuthzPolicy, forTCP bool) []customProvider {
	names, groups := customGroups(policies)
	b := authzBuilder{bundle: trustBundle(m)}
	var out []customProvider
	for _, name := range names {
		c := customProvider{name: name, rules: b.build(groups[name], rbacpb.RBAC_DENY, forTCP, customPrefix(name)).rules}
		c.ext, c.err = extAuthzFor(m, name)
		if len(names) > 1 {
			c.err = fmt.Errorf("multiple CUSTOM authorization providers on one workload (%s)", strings.Join(names, ", "))
		}
		out = append(out, c)
	}
	return out
}

func customHTTPFilters(m *model.Mesh, policies []*model.AuthzPolicy) []*hcmpb.HttpFilter {
	var out []*hcmpb.HttpFilter
	filter := func(name string, msg proto.Message) *hcmpb.HttpFilter {
		return &hcmpb.HttpFilter{Name: name, ConfigType: &hcmpb.HttpFilter_TypedConfig{TypedConfig: deterministicAny(msg)}}
	}
	for _, c := range customProviders(m, policies, false) {
		if c.err != nil {
			out = append(out, filter(RBACHTTPFilter, &rbachttppb.RBAC{Rules: badCustomDenyRules(c.rules)}))
			continue
		}
		c.ext.http.FilterEnabledMetadata = filterEnabledMetadata(RBACHTTPFilter, c.name)
		out = append(out,
			filter(RBACHTTPFilter, &rbachttppb.RBAC{ShadowRules: c.rules, ShadowRulesStatPrefix: extAuthzShadowPrefix}),
			filter(ExtAuthzHTTPFilter, c.ext.http))
	}
	return out
}

func customTCPFilters(m *model.Mesh, policies []*model.AuthzPolicy) []*listenerpb.Filter {
	var out []*listenerpb.Filter
	filter := func(name string, msg proto.Message) *listenerpb.Filter {
		return &listenerpb.Filter{Name: name, ConfigType: &listenerpb.Filter_TypedConfig{TypedConfig: deterministicAny(msg)}}
	}
	for _, c := range customProviders(m, policies, true) {
		switch {
		case c.err != nil:
			out = append(out, filter(RBACNetworkFilter, &rbactcppb.RBAC{Rules: badCustomDenyRules(c.rules), StatPrefix: rbacTCPStatPrefix}))
		case c.ext.tcp != nil: // an HTTP provider does not apply to TCP traffic
			c.ext.tcp.FilterEnabledMetadata = filterEnabledMetadata(RBACNetworkFilter, c.name)
			out = append(out,
				filter(RBACNetworkFilter, &rbactcppb.RBAC{ShadowRules: c.rules, StatPrefix: rbacTCPStatPrefix, ShadowRulesStatPrefix: extAuthzShadowPrefix}),
				filter(ExtAuthzNetworkFilter, c.ext.tcp))
		}
	}
	return out
}

// CustomAppliesToTCP reports whether CUSTOM policies of provider build filters on TCP
// chains: a gRPC provider does (ext_authz network filter), an HTTP one does not, and one
// that cannot be used does (deny rules).
func CustomAppliesToTCP(m *model.Mesh, provider string) bool {
	ext, err := extAuthzFor(m, provider)
	return err != nil || ext.tcp != nil
}

func customPrefix(provider string) string { return extAuthzMatchPrefix + "-" + provider + "-" }

// badCustomDenyRules denies whatever the CUSTOM policies match (they cannot be enforced).
func badCustomDenyRules(r *rbacpb.RBAC) *rbacpb.RBAC {
	out := &rbacpb.RBAC{Action: rbacpb.RBAC_DENY, Policies: map[string]*rbacpb.Policy{}}
	if r == nil {
		return out
	}
	for name, p := range r.Policies {
		out.Policies[name+badCustomActionSuffix] = p
	}
	return out
}

// filterEnabledMetadata enables ext_authz when the CUSTOM shadow rules of this provider
// matched: the shadow effective policy id starts with istio-ext-authz-<provider>.
func filterEnabledMetadata(filter, provider string) *matcherpb.MetadataMatcher {
	return &matcherpb.MetadataMatcher{
		Filter: filter,
		Path:   metadataPath(extAuthzShadowPrefix + shadowEffectivePolicyID),
		Value: &matcherpb.ValueMatcher{MatchPattern: &matcherpb.ValueMatcher_StringMatch{StringMatch: &matcherpb.StringMatcher{
			MatchPattern: &matcherpb.StringMatcher_Prefix{Prefix: extAuthzMatchPrefix + "-" + provider},
		}}},
	}
}

// ExtensionProviderError says why CUSTOM policies cannot use extension provider name
// (unknown, not an ext_authz provider, service not in the registry, bad settings); nil
// when they can.
func ExtensionProviderError(m *model.Mesh, name string) error {
	_, err := extAuthzFor(m, name)
	return err
}

// extAuthzFor builds the ext_authz config of extension provider name.
func extAuthzFor(m *model.Mesh, name string) (*builtExtAuthz, error) {
	var found *meshv1alpha1.MeshConfig_ExtensionProvider
	var names []string
	for _, p := range m.ExtensionProviders() {
		names = append(names, p.GetName())
		if p.GetName() == name {
			if found != nil {
				return nil, fmt.Errorf("extension provider name must be unique, found duplicate: %s", name)
			}
			found = p
		}
	}
	if found == nil {
		return nil, fmt.Errorf("available providers are %v but found %q", names, name)
	}
	switch p := found.GetProvider().(type) {
	case *meshv1alpha1.MeshConfig_ExtensionProvider_EnvoyExtAuthzHttp:
		return extAuthzHTTP(m, p.EnvoyExtAuthzHttp)
	case *meshv1alpha1.MeshConfig_ExtensionProvider_EnvoyExtAuthzGrpc:
		return extAuthzGRPC(m, p.EnvoyExtAuthzGrpc)
	}
	return nil, fmt.Errorf("extension provider %q is not an envoyExtAuthzHttp or envoyExtAuthzGrpc provider", name)
}

// lookupCluster is Istio's LookupCluster: the outbound cluster of "[<ns>/]<host>" port.
func lookupCluster(m *model.Mesh, service string, port uint32) (host, cluster string, err error) {
	if port < 1 || port > 65535 {
		return "", "", fmt.Errorf("port must be in the range [1, 65535], found: %d", port)
	}
	host = service
	if _, h, ok := strings.Cut(service, "/"); ok {
		host = h
	}
	svc := m.Service(host)
	if svc == nil {
		return "", "", fmt.Errorf("could not find service %s in the service registry", service)
	}
	if _, ok := svc.Port(port); !ok {
		return "", "", fmt.Errorf("service %s has no port %d", host, port)
	}
	return host, ClusterName("outbound", port, "", host), nil
}

func statusOnError(s string) (*typepb.HttpStatus, error) {
	if s == "" {
		return nil, nil
	}
	code, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("invalid statusOnError %q: %w", s, err)
	}
	if _, ok := typepb.StatusCode_name[int32(code)]; !ok {
		return nil, fmt.Errorf("unsupported statusOnError %s", s)
	}
	return &typepb.HttpStatus{Code: typepb.StatusCode(code)}, nil
}

func timeoutOrDefault(d *durationpb.Duration) *durationpb.Duration {
	if d == nil {
		return durationpb.New(600e9) // Istio's 600 s
	}
	return d
}

func extAuthzHTTP(m *model.Mesh, c *meshv1alpha1.MeshConfig_ExtensionProvider_EnvoyExternalAuthorizationHttpProvider) (*builtExtAuthz, error) {
	host, cluster, err := lookupCluster(m, c.GetService(), c.GetPort())
	if err != nil {
		return nil, err
	}
	status, err := statusOnError(c.GetStatusOnError())
	if err != nil {
		return nil, err
	}
	if p := c.GetPathPrefix(); p != "" {
		if _, err := url.Parse(p); err != nil || !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("pathPrefix must begin with `/`, found: %q", p)
		}
	}
	for _, l := range [][]string{c.GetIncludeRequestHeadersInCheck(), c.GetIncludeHeadersInCheck(), c.GetHeadersToDownstreamOnDeny(), c.GetHeadersToDownstreamOnAllow(), c.GetHeadersToUpstreamOnAllow()} { //nolint:staticcheck // SA1019: Istio still honours includeHeadersInCheck
		if slices.Contains(l, "*") {
			return nil, fmt.Errorf("a single wildcard (\"*\") is not supported, change it to either prefix or suffix match")
		}
	}
	svc := &extauthzpb.HttpService{
		PathPrefix: c.GetPathPrefix(),
		ServerUri: &corepb.HttpUri{
			Uri:              "http://" + host,
			HttpUpstreamType: &corepb.HttpUri_Cluster{Cluster: cluster},
			Timeout:          timeoutOrDefault(c.GetTimeout()),
		},
	}
	keys := make([]string, 0, len(c.GetIncludeAdditionalHeadersInCheck()))
	for k := range c.GetIncludeAdditionalHeadersInCheck() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if svc.AuthorizationRequest == nil {
			svc.AuthorizationRequest = &extauthzpb.AuthorizationRequest{}
		}
		svc.AuthorizationRequest.HeadersToAdd = append(svc.AuthorizationRequest.HeadersToAdd, &corepb.HeaderValue{Key: k, Value: c.GetIncludeAdditionalHeadersInCheck()[k]})
	}
	if len(c.GetHeadersToUpstreamOnAllow())+len(c.GetHeadersToDownstreamOnDeny())+len(c.GetHeadersToDownstreamOnAllow()) > 0 {
		svc.AuthorizationResponse = &extauthzpb.AuthorizationResponse{
			AllowedUpstreamHeaders:        headerList(c.GetHeadersToUpstreamOnAllow()),
			AllowedClientHeaders:          headerList(c.GetHeadersToDownstreamOnDeny()),
			AllowedClientHeadersOnSuccess: headerList(c.GetHeadersToDownstreamOnAllow()),
		}
	}
	h := &extauthzpb.ExtAuthz{
		StatusOnError:       status,
		FailureModeAllow:    c.GetFailOpen(),
		TransportApiVersion: corepb.ApiVersion_V3,
		Services:            &extauthzpb.ExtAuthz_HttpService{HttpService: svc},
		WithRequestBody:     bodySettings(c.GetIncludeRequestBodyInCheck()),
	}
	allowed := headerList(c.GetIncludeRequestHeadersInCheck())
	if allowed == nil {
		allowed = headerList(c.GetIncludeHeadersInCheck()) //nolint:staticcheck // SA1019: Istio still honours includeHeadersInCheck
	}
	h.AllowedHeaders = allowed
	return &builtExtAuthz{http: h}, nil
}

func extAuthzGRPC(m *model.Mesh, c *meshv1alpha1.MeshConfig_ExtensionProvider_EnvoyExternalAuthorizationGrpcProvider) (*builtExtAuthz, error) {
	host, cluster, err := lookupCluster(m, c.GetService(), c.GetPort())
	if err != nil {
		return nil, err
	}
	status, err := statusOnError(c.GetStatusOnError())
	if err != nil {
		return nil, err
	}
	grpc := &corepb.GrpcService{
		TargetSpecifier: &corepb.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corepb.GrpcService_EnvoyGrpc{ClusterName: cluster, Authority: host}},
		Timeout:         timeoutOrDefault(c.GetTimeout()),
	}
	return &builtExtAuthz{
		http: &extauthzpb.ExtAuthz{
			StatusOnError: status, FailureModeAllow: c.GetFailOpen(), TransportApiVersion: corepb.ApiVersion_V3,
			Services:        &extauthzpb.ExtAuthz_GrpcService{GrpcService: grpc},
			WithRequestBody: bodySettings(c.GetIncludeRequestBodyInCheck()),
		},
		tcp: &extauthztcppb.ExtAuthz{StatPrefix: "tcp.", FailureModeAllow: c.GetFailOpen(), TransportApiVersion: corepb.ApiVersion_V3, GrpcService: grpc},
	}, nil
}

func bodySettings(b *meshv1alpha1.MeshConfig_ExtensionProvider_EnvoyExternalAuthorizationRequestBody) *extauthzpb.BufferSettings {
	if b == nil {
		return nil
	}
	return &extauthzpb.BufferSettings{MaxRequestBytes: b.GetMaxRequestBytes(), AllowPartialMessage: b.GetAllowPartialMessage(), PackAsBytes: b.GetPackAsBytes()}
}

// headerList is Istio's generateHeaders: case-insensitive exact, "x-*" prefix, "*-y" suffix.
func headerList(headers []string) *matcherpb.ListStringMatcher {
	if len(headers) == 0 {
		return nil
	}
	out := &matcherpb.ListStringMatcher{}
	for _, h := range headers {
		m := &matcherpb.StringMatcher{IgnoreCase: true}
		switch {
		case strings.HasPrefix(h, "*"):
			m.MatchPattern = &matcherpb.StringMatcher_Suffix{Suffix: h[1:]}
		case strings.HasSuffix(h, "*"):
			m.MatchPattern = &matcherpb.StringMatcher_Prefix{Prefix: h[:len(h)-1]}
		default:
			m.MatchPattern = &matcherpb.StringMatcher_Exact{Exact: h}
		}
		out.Patterns = append(out.Patterns, m)
	}
	return out
}
