package xdsclient

import (
	"fmt"
	"sort"
	"strings"

	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	commonfaultpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/fault/v3"
	faultpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// Envoy defaults for fields that are unset in a route.
const (
	defaultRouteTimeout = 15e9 // 15 s
	defaultBackOffBase  = 25e6 // 25 ms
)

const faultFilterName = "envoy.filters.http.fault"

// DecodeRouteConfig validates and converts a RouteConfiguration. Errors name the field,
// e.g. `virtual_hosts[0].routes[2].match.safe_regex: invalid regex "(": ...`.
func DecodeRouteConfig(rc *routepb.RouteConfiguration) (*resource.RouteConfig, error) {
	if err := validate(rc); err != nil {
		return nil, err
	}
	switch {
	case rc.GetVhds() != nil:
		return nil, fmt.Errorf("vhds: not supported")
	case len(rc.GetRequestHeadersToAdd()) > 0 || len(rc.GetRequestHeadersToRemove()) > 0:
		return nil, fmt.Errorf("request_headers_to_add/remove: not supported on the route configuration")
	case len(rc.GetResponseHeadersToAdd()) > 0 || len(rc.GetResponseHeadersToRemove()) > 0:
		return nil, fmt.Errorf("response_headers_to_add/remove: not supported on the route configuration")
	case len(rc.GetClusterSpecifierPlugins()) > 0:
		return nil, fmt.Errorf("cluster_specifier_plugins: not supported")
	case len(rc.GetRequestMirrorPolicies()) > 0:
		return nil, fmt.Errorf("request_mirror_policies: not supported on the route configuration")
	case rc.GetVhostHeader() != "":
		return nil, fmt.Errorf("vhost_header: not supported")
	}
	out := &resource.RouteConfig{Name: rc.GetName(), IgnorePortInHostMatching: rc.GetIgnorePortInHostMatching()}
	for i, vh := range rc.GetVirtualHosts() {
		v, err := decodeVirtualHost(vh)
		if err != nil {
			return nil, fmt.Errorf("virtual_hosts[%d].%w", i, err)
		}
		out.VirtualHosts = append(out.VirtualHosts, v)
	}
	return out, nil
}

func decodeVirtualHost(vh *routepb.VirtualHost) (resource.VirtualHost, error) {
	out := resource.VirtualHost{
		Name:                   vh.GetName(),
		Domains:                vh.GetDomains(),
		IncludeAttemptCount:    vh.GetIncludeRequestAttemptCount(),
		RequestHeadersToRemove: vh.GetRequestHeadersToRemove(),
	}
	switch vh.GetRequireTls() {
	case routepb.VirtualHost_ALL:
		out.RequireTLS = resource.RequireTLSAll
	case routepb.VirtualHost_EXTERNAL_ONLY:
		out.RequireTLS = resource.RequireTLSExternalOnly
	}
	switch {
	case len(vh.GetRateLimits()) > 0:
		return out, fmt.Errorf("rate_limits: not supported")
	case vh.GetMatcher() != nil:
		return out, fmt.Errorf("matcher: not supported")
	case len(vh.GetResponseHeadersToAdd()) > 0 || len(vh.GetResponseHeadersToRemove()) > 0:
		return out, fmt.Errorf("response_headers_to_add/remove: not supported on a virtual host")
	case vh.GetHedgePolicy() != nil:
		return out, fmt.Errorf("hedge_policy: not supported")
	case vh.GetRetryPolicyTypedConfig() != nil:
		return out, fmt.Errorf("retry_policy_typed_config: not supported")
	case len(vh.GetRequestMirrorPolicies()) > 0:
		return out, fmt.Errorf("request_mirror_policies: not supported on a virtual host")
	}
	if err := checkPerFilterConfig(vh.GetTypedPerFilterConfig(), false); err != nil {
		return out, err
	}
	var err error
	if out.RequestHeadersToAdd, err = decodeHeaderOptions(vh.GetRequestHeadersToAdd()); err != nil {
		return out, fmt.Errorf("request_headers_to_add%w", err)
	}
	if vh.GetRetryPolicy() != nil {
		if out.RetryPolicy, err = decodeRetryPolicy(vh.GetRetryPolicy()); err != nil {
			return out, fmt.Errorf("retry_policy.%w", err)
		}
	}
	for i, r := range vh.GetRoutes() {
		rt, err := decodeRoute(r)
		if err != nil {
			return out, fmt.Errorf("routes[%d].%w", i, err)
		}
		out.Routes = append(out.Routes, rt)
	}
	return out, nil
}

// checkPerFilterConfig rejects typed_per_filter_config for filters the proxy does not run;
// the fault filter's is allowed only where allowFault says so (routes).
func checkPerFilterConfig(m map[string]*anypb.Any, allowFault bool) error {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if k == faultFilterName && allowFault {
			continue
		}
		if ignoredHTTPFilters[k] {
			continue
		}
		return fmt.Errorf("typed_per_filter_config[%q]: not supported", k)
	}
	return nil
}

func decodeRoute(r *routepb.Route) (resource.Route, error) {
	out := resource.Route{
		Name:                    r.GetName(),
		RequestHeadersToRemove:  r.GetRequestHeadersToRemove(),
		ResponseHeadersToRemove: r.GetResponseHeadersToRemove(),
		VirtualService:          stringField(filterMetadata(r.GetMetadata(), "istio"), "config"),
		Operation:               r.GetDecorator().GetOperation(),
	}
	var err error
	if out.Match, err = decodeRouteMatch(r.GetMatch()); err != nil {
		return out, fmt.Errorf("match.%w", err)
	}
	switch a := r.GetAction().(type) {
	case *routepb.Route_Route:
		if out.Action, err = decodeRouteAction(a.Route); err != nil {
			return out, fmt.Errorf("route.%w", err)
		}
	case *routepb.Route_Redirect:
		if out.Redirect, err = decodeRedirect(a.Redirect); err != nil {
			return out, fmt.Errorf("redirect.%w", err)
		}
	case *routepb.Route_DirectResponse:
		if out.DirectResponse, err = decodeDirectResponse(a.DirectResponse); err != nil {
			return out, fmt.Errorf("direct_response.%w", err)
		}
	default:
		return out, fmt.Errorf("action: %T is not supported", a)
	}
	if out.RequestHeadersToAdd, err = decodeHeaderOptions(r.GetRequestHeadersToAdd()); err != nil {
		return out, fmt.Errorf("request_headers_to_add%w", err)
	}
	if out.ResponseHeadersToAdd, err = decodeHeaderOptions(r.GetResponseHeadersToAdd()); err != nil {
		return out, fmt.Errorf("response_headers_to_add%w", err)
	}
	if err := checkPerFilterConfig(r.GetTypedPerFilterConfig(), true); err != nil {
		return out, err
	}
	if a := r.GetTypedPerFilterConfig()[faultFilterName]; a != nil {
		if out.Fault, err = decodeFault(a); err != nil {
			return out, fmt.Errorf("typed_per_filter_config[%q].%w", faultFilterName, err)
		}
	}
	return out, nil
}

func decodeRouteMatch(m *routepb.RouteMatch) (resource.RouteMatch, error) {
	out := resource.RouteMatch{CaseSensitive: boolOr(m.GetCaseSensitive(), true)}
	switch p := m.GetPathSpecifier().(type) {
	case *routepb.RouteMatch_Prefix:
		out.PathKind, out.Path = resource.PathPrefix, p.Prefix
	case *routepb.RouteMatch_Path:
		out.PathKind, out.Path = resource.PathExact, p.Path
	case *routepb.RouteMatch_PathSeparatedPrefix:
		out.PathKind, out.Path = resource.PathSeparated, p.PathSeparatedPrefix
	case *routepb.RouteMatch_SafeRegex:
		re, err := decodeRegexMatcher(p.SafeRegex)
		if err != nil {
			return out, fmt.Errorf("safe_regex: %w", err)
		}
		out.PathKind, out.Path, out.Regex = resource.PathRegex, p.SafeRegex.GetRegex(), re
	case *routepb.RouteMatch_ConnectMatcher_:
		return out, fmt.Errorf("connect_matcher: not supported")
	default:
		return out, fmt.Errorf("path_specifier: %T is not supported", p)
	}
	switch {
	case m.GetRuntimeFraction() != nil:
		return out, fmt.Errorf("runtime_fraction: not supported")
	case m.GetGrpc() != nil:
		return out, fmt.Errorf("grpc: not supported")
	case m.GetTlsContext() != nil:
		return out, fmt.Errorf("tls_context: not supported")
	case len(m.GetDynamicMetadata()) > 0:
		return out, fmt.Errorf("dynamic_metadata: not supported")
	case len(m.GetFilterState()) > 0:
		return out, fmt.Errorf("filter_state: not supported")
	case len(m.GetCookies()) > 0:
		return out, fmt.Errorf("cookies: not supported")
	}
	for i, h := range m.GetHeaders() {
		hm, err := decodeHeaderMatcher(h)
		if err != nil {
			return out, fmt.Errorf("headers[%d].%w", i, err)
		}
		out.Headers = append(out.Headers, hm)
	}
	for i, q := range m.GetQueryParameters() {
		qm := resource.QueryParamMatcher{Name: q.GetName()}
		switch s := q.GetQueryParameterMatchSpecifier().(type) {
		case *routepb.QueryParameterMatcher_PresentMatch:
			if !s.PresentMatch {
				return out, fmt.Errorf("query_parameters[%d].present_match: false is not supported", i)
			}
			qm.Present = true
		case *routepb.QueryParameterMatcher_StringMatch:
			sm, err := decodeStringMatcher(s.StringMatch)
			if err != nil {
				return out, fmt.Errorf("query_parameters[%d].string_match.%w", i, err)
			}
			qm.Value = sm
		default:
			// Envoy: with no specifier the parameter must be present.
			qm.Present = true
		}
		out.QueryParams = append(out.QueryParams, qm)
	}
	return out, nil
}

func decodeHeaderMatcher(h *routepb.HeaderMatcher) (resource.HeaderMatcher, error) {
	out := resource.HeaderMatcher{Name: strings.ToLower(h.GetName()), Invert: h.GetInvertMatch(), TreatMissingAsEmpty: h.GetTreatMissingHeaderAsEmpty()}
	var err error
	switch s := h.GetHeaderMatchSpecifier().(type) {
	case *routepb.HeaderMatcher_PresentMatch:
		out.Present = true
		if !s.PresentMatch { // present_match: false matches an absent header
			out.Invert = !out.Invert
		}
	case *routepb.HeaderMatcher_StringMatch:
		if out.Value, err = decodeStringMatcher(s.StringMatch); err != nil {
			return out, fmt.Errorf("string_match.%w", err)
		}
	case *routepb.HeaderMatcher_ExactMatch:
		out.Value = resource.StringMatcher{Kind: resource.MatchExact, Value: s.ExactMatch} //nolint:staticcheck // SA1019: Envoy still honours the deprecated field
	case *routepb.HeaderMatcher_PrefixMatch:
		out.Value = resource.StringMatcher{Kind: resource.MatchPrefix, Value: s.PrefixMatch} //nolint:staticcheck // SA1019: Envoy still honours the deprecated field
	case *routepb.HeaderMatcher_SuffixMatch:
		out.Value = resource.StringMatcher{Kind: resource.MatchSuffix, Value: s.SuffixMatch} //nolint:staticcheck // SA1019: Envoy still honours the deprecated field
	case *routepb.HeaderMatcher_ContainsMatch:
		out.Value = resource.StringMatcher{Kind: resource.MatchContains, Value: s.ContainsMatch} //nolint:staticcheck // SA1019: Envoy still honours the deprecated field
	case *routepb.HeaderMatcher_SafeRegexMatch:
		re, err := decodeRegexMatcher(s.SafeRegexMatch) //nolint:staticcheck // SA1019: Envoy still honours the deprecated field
		if err != nil {
			return out, fmt.Errorf("safe_regex_match: %w", err)
		}
		out.Value = resource.StringMatcher{Kind: resource.MatchRegex, Regex: re}
	case nil:
		// Envoy: no specifier means the header must be present.
		out.Present = true
	default:
		return out, fmt.Errorf("header_match_specifier: %T is not supported", s)
	}
	return out, nil
}

func decodeRouteAction(a *routepb.RouteAction) (*resource.RouteAction, error) {
	out := &resource.RouteAction{
		PrefixRewrite: a.GetPrefixRewrite(),
		Timeout:       durationOr(a.GetTimeout(), defaultRouteTimeout),
	}
	switch c := a.GetClusterSpecifier().(type) {
	case *routepb.RouteAction_Cluster:
		out.Cluster = c.Cluster
	case *routepb.RouteAction_WeightedClusters:
		wcs, err := decodeWeightedClusters(c.WeightedClusters.GetClusters())
		if err != nil {
			return nil, fmt.Errorf("weighted_clusters.%w", err)
		}
		out.WeightedClusters = wcs
	default:
		return nil, fmt.Errorf("cluster_specifier: %T is not supported", c)
	}
	switch a.GetClusterNotFoundResponseCode() {
	case routepb.RouteAction_SERVICE_UNAVAILABLE:
		out.ClusterNotFoundCode = 503
	case routepb.RouteAction_NOT_FOUND:
		out.ClusterNotFoundCode = 404
	case routepb.RouteAction_INTERNAL_SERVER_ERROR:
		out.ClusterNotFoundCode = 500
	default:
		return nil, fmt.Errorf("cluster_not_found_response_code: %s is not supported", a.GetClusterNotFoundResponseCode())
	}
	switch h := a.GetHostRewriteSpecifier().(type) {
	case nil:
	case *routepb.RouteAction_HostRewriteLiteral:
		out.HostRewriteLiteral = h.HostRewriteLiteral
	case *routepb.RouteAction_AutoHostRewrite:
		out.AutoHostRewrite = h.AutoHostRewrite.GetValue()
	default:
		return nil, fmt.Errorf("host_rewrite_specifier: %T is not supported", h)
	}
	switch {
	case a.GetMetadataMatch() != nil:
		return nil, fmt.Errorf("metadata_match: not supported")
	case a.GetPathRewritePolicy() != nil || a.GetPathRewrite() != "":
		return nil, fmt.Errorf("path_rewrite: not supported")
	case a.GetRetryPolicyTypedConfig() != nil:
		return nil, fmt.Errorf("retry_policy_typed_config: not supported")
	case len(a.GetRateLimits()) > 0:
		return nil, fmt.Errorf("rate_limits: not supported")
	case a.GetInternalRedirectPolicy() != nil || a.GetInternalRedirectAction() != routepb.RouteAction_PASS_THROUGH_INTERNAL_REDIRECT: //nolint:staticcheck // SA1019: a config that sets it must still be rejected
		return nil, fmt.Errorf("internal_redirect_policy: not supported")
	case a.GetHedgePolicy() != nil:
		return nil, fmt.Errorf("hedge_policy: not supported")
	}
	if rr := a.GetRegexRewrite(); rr != nil {
		re, err := compileSearch(rr.GetPattern().GetRegex())
		if err != nil {
			return nil, fmt.Errorf("regex_rewrite.pattern: %w", err)
		}
		out.RegexRewrite = &resource.RegexRewrite{Pattern: re, Substitution: rr.GetSubstitution()}
	}
	if a.GetRetryPolicy() != nil {
		rp, err := decodeRetryPolicy(a.GetRetryPolicy())
		if err != nil {
			return nil, fmt.Errorf("retry_policy.%w", err)
		}
		out.RetryPolicy = rp
	}
	for i, hp := range a.GetHashPolicy() {
		h, err := decodeHashPolicy(hp)
		if err != nil {
			return nil, fmt.Errorf("hash_policy[%d].%w", i, err)
		}
		out.HashPolicy = append(out.HashPolicy, h)
	}
	for i, m := range a.GetRequestMirrorPolicies() {
		if m.GetClusterHeader() != "" {
			return nil, fmt.Errorf("request_mirror_policies[%d].cluster_header: not supported", i)
		}
		pct := 100.0
		if rf := m.GetRuntimeFraction(); rf != nil {
			pct = percentOf(rf.GetDefaultValue())
		}
		out.Mirrors = append(out.Mirrors, resource.Mirror{Cluster: m.GetCluster(), Percent: pct})
	}
	return out, nil
}

func decodeWeightedClusters(cws []*routepb.WeightedCluster_ClusterWeight) ([]resource.WeightedCluster, error) {
	out := make([]resource.WeightedCluster, 0, len(cws))
	for i, cw := range cws {
		wc := resource.WeightedCluster{
			Name:                    cw.GetName(),
			Weight:                  cw.GetWeight().GetValue(),
			RequestHeadersToRemove:  cw.GetRequestHeadersToRemove(),
			ResponseHeadersToRemove: cw.GetResponseHeadersToRemove(),
		}
		switch {
		case cw.GetClusterHeader() != "":
			return nil, fmt.Errorf("clusters[%d].cluster_header: not supported", i)
		case cw.GetMetadataMatch() != nil:
			return nil, fmt.Errorf("clusters[%d].metadata_match: not supported", i)
		}
		if err := checkPerFilterConfig(cw.GetTypedPerFilterConfig(), false); err != nil {
			return nil, fmt.Errorf("clusters[%d].%w", i, err)
		}
		if h, ok := cw.GetHostRewriteSpecifier().(*routepb.WeightedCluster_ClusterWeight_HostRewriteLiteral); ok {
			wc.HostRewriteLiteral = h.HostRewriteLiteral
		}
		var err error
		if wc.RequestHeadersToAdd, err = decodeHeaderOptions(cw.GetRequestHeadersToAdd()); err != nil {
			return nil, fmt.Errorf("clusters[%d].request_headers_to_add%w", i, err)
		}
		if wc.ResponseHeadersToAdd, err = decodeHeaderOptions(cw.GetResponseHeadersToAdd()); err != nil {
			return nil, fmt.Errorf("clusters[%d].response_headers_to_add%w", i, err)
		}
		out = append(out, wc)
	}
	return out, nil
}

const (
	previousHostsPredicate = "envoy.retry_host_predicates.previous_hosts"
	previousPrioritiesName = "envoy.retry_priorities.previous_priorities"
)

func decodeHashPolicy(hp *routepb.RouteAction_HashPolicy) (resource.HashPolicy, error) {
	out := resource.HashPolicy{Terminal: hp.GetTerminal()}
	switch p := hp.GetPolicySpecifier().(type) {
	case *routepb.RouteAction_HashPolicy_Header_:
		if p.Header.GetRegexRewrite() != nil {
			return out, fmt.Errorf("header.regex_rewrite: not supported")
		}
		out.Header = strings.ToLower(p.Header.GetHeaderName())
	case *routepb.RouteAction_HashPolicy_Cookie_:
		c := p.Cookie
		if len(c.GetAttributes()) > 0 {
			return out, fmt.Errorf("cookie.attributes: not supported")
		}
		out.Cookie = &resource.CookieHash{Name: c.GetName(), Path: c.GetPath(), HasTTL: c.GetTtl() != nil, TTL: durationOr(c.GetTtl(), 0)}
	case *routepb.RouteAction_HashPolicy_ConnectionProperties_:
		out.SourceIP = p.ConnectionProperties.GetSourceIp()
	case *routepb.RouteAction_HashPolicy_QueryParameter_:
		out.QueryParameter = p.QueryParameter.GetName()
	default:
		return out, fmt.Errorf("policy_specifier: %T is not supported", p)
	}
	return out, nil
}

func decodeRetryPolicy(p *routepb.RetryPolicy) (*resource.RetryPolicy, error) {
	out := &resource.RetryPolicy{
		NumRetries:                    1,
		PerTryTimeout:                 durationOr(p.GetPerTryTimeout(), 0),
		RetriableStatusCodes:          p.GetRetriableStatusCodes(),
		HostSelectionRetryMaxAttempts: p.GetHostSelectionRetryMaxAttempts(),
		BackOffBase:                   defaultBackOffBase,
	}
	if p.GetNumRetries() != nil {
		out.NumRetries = p.GetNumRetries().GetValue()
	}
	for _, s := range strings.Split(p.GetRetryOn(), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out.RetryOn = append(out.RetryOn, s)
		}
	}
	for i, hp := range p.GetRetryHostPredicate() {
		if hp.GetName() != previousHostsPredicate {
			return nil, fmt.Errorf("retry_host_predicate[%d]: %q is not supported", i, hp.GetName())
		}
		out.AvoidPreviousHosts = true
	}
	if rp := p.GetRetryPriority(); rp != nil {
		if rp.GetName() != previousPrioritiesName {
			return nil, fmt.Errorf("retry_priority: %q is not supported", rp.GetName())
		}
		out.RemoteLocalities = true
	}
	for i, h := range p.GetRetriableHeaders() {
		m, err := decodeHeaderMatcher(h)
		if err != nil {
			return nil, fmt.Errorf("retriable_headers[%d].%w", i, err)
		}
		out.RetriableHeaders = append(out.RetriableHeaders, m)
	}
	switch {
	case p.GetRateLimitedRetryBackOff() != nil:
		return nil, fmt.Errorf("rate_limited_retry_back_off: not supported")
	case len(p.GetRetriableRequestHeaders()) > 0:
		return nil, fmt.Errorf("retriable_request_headers: not supported")
	case len(p.GetRetryOptionsPredicates()) > 0:
		return nil, fmt.Errorf("retry_options_predicates: not supported")
	}
	if b := p.GetRetryBackOff(); b != nil {
		out.BackOffBase = durationOr(b.GetBaseInterval(), defaultBackOffBase)
		out.BackOffMax = durationOr(b.GetMaxInterval(), 0)
	}
	if out.BackOffMax == 0 {
		out.BackOffMax = 10 * out.BackOffBase
	}
	if out.BackOffMax < out.BackOffBase {
		return nil, fmt.Errorf("retry_back_off.max_interval: %s is less than base_interval %s", out.BackOffMax, out.BackOffBase)
	}
	return out, nil
}

func decodeRedirect(r *routepb.RedirectAction) (*resource.Redirect, error) {
	out := &resource.Redirect{Host: r.GetHostRedirect(), Port: r.GetPortRedirect(), StripQuery: r.GetStripQuery()}
	switch s := r.GetSchemeRewriteSpecifier().(type) {
	case *routepb.RedirectAction_HttpsRedirect:
		if s.HttpsRedirect {
			out.Scheme = "https"
		}
	case *routepb.RedirectAction_SchemeRedirect:
		out.Scheme = s.SchemeRedirect
	}
	switch p := r.GetPathRewriteSpecifier().(type) {
	case nil:
	case *routepb.RedirectAction_PathRedirect:
		out.Path = p.PathRedirect
	case *routepb.RedirectAction_PrefixRewrite:
		out.PrefixRewrite = p.PrefixRewrite
	default:
		return nil, fmt.Errorf("path_rewrite_specifier: %T is not supported", p)
	}
	switch r.GetResponseCode() {
	case routepb.RedirectAction_MOVED_PERMANENTLY:
		out.Code = 301
	case routepb.RedirectAction_FOUND:
		out.Code = 302
	case routepb.RedirectAction_SEE_OTHER:
		out.Code = 303
	case routepb.RedirectAction_TEMPORARY_REDIRECT:
		out.Code = 307
	case routepb.RedirectAction_PERMANENT_REDIRECT:
		out.Code = 308
	default:
		return nil, fmt.Errorf("response_code: %s is not supported", r.GetResponseCode())
	}
	return out, nil
}

func decodeDirectResponse(d *routepb.DirectResponseAction) (*resource.DirectResponse, error) {
	out := &resource.DirectResponse{Status: int(d.GetStatus())}
	if d.GetBodyFormat() != nil {
		return nil, fmt.Errorf("body_format: not supported")
	}
	if b := d.GetBody(); b != nil {
		switch {
		case b.GetFilename() != "" || b.GetEnvironmentVariable() != "":
			return nil, fmt.Errorf("body: only inline_string and inline_bytes are supported")
		case len(b.GetInlineBytes()) > 0:
			out.Body = string(b.GetInlineBytes())
		default:
			out.Body = b.GetInlineString()
		}
	}
	return out, nil
}

// decodeFault converts typed_per_filter_config["envoy.filters.http.fault"] (an HTTPFault,
// possibly wrapped in a config.route.v3.FilterConfig).
func decodeFault(a *anypb.Any) (*resource.Fault, error) {
	if a.MessageIs(&routepb.FilterConfig{}) {
		var fc routepb.FilterConfig
		if err := a.UnmarshalTo(&fc); err != nil {
			return nil, fmt.Errorf("typed_config: %w", err)
		}
		a = fc.GetConfig()
	}
	var f faultpb.HTTPFault
	if err := a.UnmarshalTo(&f); err != nil {
		return nil, fmt.Errorf("typed_config: %w", err)
	}
	if err := validate(&f); err != nil {
		return nil, err
	}
	switch {
	case len(f.GetHeaders()) > 0:
		return nil, fmt.Errorf("headers: not supported")
	case len(f.GetDownstreamNodes()) > 0:
		return nil, fmt.Errorf("downstream_nodes: not supported")
	case f.GetUpstreamCluster() != "":
		return nil, fmt.Errorf("upstream_cluster: not supported")
	case f.GetResponseRateLimit() != nil:
		return nil, fmt.Errorf("response_rate_limit: not supported")
	}
	out := &resource.Fault{AbortGRPC: -1}
	if d := f.GetDelay(); d != nil {
		fd, ok := d.GetFaultDelaySecifier().(*commonfaultpb.FaultDelay_FixedDelay)
		if !ok {
			return nil, fmt.Errorf("delay: only fixed_delay is supported")
		}
		out.Delay = fd.FixedDelay.AsDuration()
		out.DelayPercent = percentOf(d.GetPercentage())
	}
	if ab := f.GetAbort(); ab != nil {
		switch e := ab.GetErrorType().(type) {
		case *faultpb.FaultAbort_HttpStatus:
			out.AbortStatus = int(e.HttpStatus)
		case *faultpb.FaultAbort_GrpcStatus:
			out.AbortGRPC = int(e.GrpcStatus)
		default:
			return nil, fmt.Errorf("abort: %T is not supported", e)
		}
		out.AbortPercent = percentOf(ab.GetPercentage())
	}
	return out, nil
}
