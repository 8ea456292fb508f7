package translate

import (
	"cmp"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	faultcommonpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/fault/v3"
	faultpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	previousprioritiespb "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/priority/previous_priorities/v3"
	matcherpb "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typepb "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// vsRoutes translates a VirtualService's http routes for one service port, as Istio does
// for a sidecar: one Envoy route per match that applies to the proxy and port, in order,
// stopping after a catch-all. CORS policies are not translated yet.
func (g *generator) vsRoutes(vs *model.VirtualService, port uint32) []*routepb.Route {
	return g.vsRoutesWhere(vs, port, func(m *networkingv1alpha3.HTTPMatchRequest) bool { return model.MatchApplies(m, g.p) })
}

// vsRoutesWhere is vsRoutes with the proxy's match rule as a parameter: sidecars use
// model.MatchApplies, gateways model.GatewayMatchApplies (gateway.go).
func (g *generator) vsRoutesWhere(vs *model.VirtualService, port uint32, applies func(*networkingv1alpha3.HTTPMatchRequest) bool) []*routepb.Route {
	var out []*routepb.Route
	for _, hr := range vs.HTTP {
		stop := len(hr.Route.GetMatch()) == 0
		if stop {
			out = append(out, g.translateRoute(vs, hr, nil, port))
		}
		for _, m := range hr.Route.GetMatch() {
			if (m.GetPort() != 0 && m.GetPort() != port) || !applies(m) {
				continue
			}
			r := g.translateRoute(vs, hr, m, port)
			out = append(out, r)
			if catchAll(r.GetMatch()) {
				stop = true
				break
			}
		}
		if stop {
			break
		}
	}
	return out
}

// catchAll is Istio's IsCatchAllRoute: prefix "/" (or regex ".*") and nothing else.
func catchAll(m *routepb.RouteMatch) bool {
	all := m.GetPrefix() == "/"
	if re := m.GetSafeRegex(); re != nil {
		all = re.GetRegex() == ".*"
	}
	return all && len(m.GetHeaders()) == 0 && len(m.GetQueryParameters()) == 0
}

// routeName is Istio's: the http route's name, then "." and the match's name if it has one.
func routeName(r *networkingv1alpha3.HTTPRoute, m *networkingv1alpha3.HTTPMatchRequest) string {
	if m.GetName() != "" {
		return r.GetName() + "." + m.GetName()
	}
	return r.GetName()
}

func (g *generator) translateRoute(vs *model.VirtualService, hr model.HTTPRoute, m *networkingv1alpha3.HTTPMatchRequest, port uint32) *routepb.Route {
	in := hr.Route
	ns := hr.Source.Namespace
	out := &routepb.Route{
		Name:       routeName(in, m),
		Match:      translateMatch(m),
		StatPrefix: m.GetStatPrefix(),
		Metadata: &corepb.Metadata{FilterMetadata: map[string]*structpb.Struct{
			"istio": mustStruct(map[string]any{"config": model.ConfigPath(hr.Source)}),
		}},
	}
	authority := ""
	if h := in.GetHeaders(); h != nil {
		ops := translateHeaders(h)
		out.RequestHeadersToAdd, out.RequestHeadersToRemove = ops.reqAdd, ops.reqRemove
		out.ResponseHeadersToAdd, out.ResponseHeadersToRemove = ops.respAdd, ops.respRemove
		authority = ops.authority
	}
	switch {
	case in.GetRedirect() != nil:
		out.Action = translateRedirect(in.GetRedirect(), port)
	case in.GetDirectResponse() != nil:
		dr := &routepb.DirectResponseAction{Status: in.GetDirectResponse().GetStatus()}
		switch b := in.GetDirectResponse().GetBody().GetSpecifier().(type) {
		case *networkingv1alpha3.HTTPBody_String_:
			dr.Body = &corepb.DataSource{Specifier: &corepb.DataSource_InlineString{InlineString: b.String_}}
		case *networkingv1alpha3.HTTPBody_Bytes:
			dr.Body = &corepb.DataSource{Specifier: &corepb.DataSource_InlineBytes{InlineBytes: b.Bytes}}
		}
		out.Action = &routepb.Route_DirectResponse{DirectResponse: dr}
	default:
		out.Action = &routepb.Route_Route{Route: g.routeAction(in, ns, port, authority, out)}
	}
	out.Decorator = &routepb.Decorator{Operation: operation(out, vs.Config.Name, port)}
	if f := translateFault(in.GetFault()); f != nil {
		out.TypedPerFilterConfig = map[string]*anypb.Any{FaultFilter: mustAny(f)}
	}
	return out
}

// operation is Istio's decorator: "<host>:<port><path>" for a route to one cluster,
// "<virtual service>:<port><path>" otherwise.
func operation(r *routepb.Route, vsName string, port uint32) string {
	path := "/*"
	switch ps := r.GetMatch().GetPathSpecifier().(type) {
	case *routepb.RouteMatch_Prefix:
		path = ps.Prefix + "*"
	case *routepb.RouteMatch_Path:
		path = ps.Path
	case *routepb.RouteMatch_SafeRegex:
		path = ps.SafeRegex.GetRegex()
	}
	if c := r.GetRoute().GetCluster(); strings.Count(c, "|") == 3 {
		parts := strings.SplitN(c, "|", 4)
		return parts[3] + ":" + parts[1] + path
	}
	return vsName + ":" + itoa(port) + path
}

// destinationCluster names the cluster a destination goes to: its port, else the
// service's only port, else the virtual host's port.
func (g *generator) destinationCluster(d *networkingv1alpha3.Destination, ns string, port uint32) string {
	host := model.ResolveHost(d.GetHost(), ns)
	p := d.GetPort().GetNumber()
	if p == 0 {
		p = port
		if s := g.m.Service(host); s != nil && len(s.Ports) == 1 {
			p = s.Ports[0].Number
		}
	}
	return ClusterName("outbound", p, d.GetSubset(), host)
}

func (g *generator) routeAction(in *networkingv1alpha3.HTTPRoute, ns string, port uint32, authority string, r *routepb.Route) *routepb.RouteAction {
	a := &routepb.RouteAction{}
	setTimeout(a, in.GetTimeout())
	if rw := in.GetRewrite(); rw != nil {
		if rr := rw.GetUriRegexRewrite(); rr != nil {
			a.RegexRewrite = &matcherpb.RegexMatchAndSubstitute{Pattern: &matcherpb.RegexMatcher{Regex: rr.GetMatch()}, Substitution: rr.GetRewrite()}
		} else if rw.GetUri() != "" {
			a.PrefixRewrite = rw.GetUri()
		}
		if rw.GetAuthority() != "" {
			authority = rw.GetAuthority()
		}
	}
	if authority != "" {
		a.HostRewriteSpecifier = &routepb.RouteAction_HostRewriteLiteral{HostRewriteLiteral: authority}
	}
	if in.GetMirror() != nil {
		if f := mirrorFraction(in.GetMirrorPercentage(), in.GetMirrorPercent()); f != nil { //nolint:staticcheck // SA1019: Istio still honours mirrorPercent
			a.RequestMirrorPolicies = append(a.RequestMirrorPolicies, mirrorPolicy(g.destinationCluster(in.GetMirror(), ns, port), f))
		}
	}
	for _, mp := range in.GetMirrors() {
		if f := mirrorFraction(mp.GetPercentage(), nil); f != nil && mp.GetDestination() != nil {
			a.RequestMirrorPolicies = append(a.RequestMirrorPolicies, mirrorPolicy(g.destinationCluster(mp.GetDestination(), ns, port), f))
		}
	}
	retries := in.GetRetries()
	if retries == nil {
		retries = g.m.DefaultHTTPRetryPolicy()
	}
	dests := in.GetRoute()
	hashed := false
	if len(dests) == 1 {
		d := dests[0]
		a.ClusterSpecifier = &routepb.RouteAction_Cluster{Cluster: g.destinationCluster(d.GetDestination(), ns, port)}
		if h := d.GetHeaders(); h != nil {
			ops := translateHeaders(h)
			r.RequestHeadersToAdd = append(r.RequestHeadersToAdd, ops.reqAdd...)
			r.RequestHeadersToRemove = append(r.RequestHeadersToRemove, ops.reqRemove...)
			r.ResponseHeadersToAdd = append(r.ResponseHeadersToAdd, ops.respAdd...)
			r.ResponseHeadersToRemove = append(r.ResponseHeadersToRemove, ops.respRemove...)
			if ops.authority != "" && a.HostRewriteSpecifier == nil {
				a.HostRewriteSpecifier = &routepb.RouteAction_HostRewriteLiteral{HostRewriteLiteral: ops.authority}
			}
		}
		if hp := g.hashPolicy(d.GetDestination(), ns, port); hp != nil {
			a.HashPolicy = append(a.HashPolicy, hp)
			hashed = true
		}
	} else {
		wc := &routepb.WeightedCluster{}
		for _, d := range dests {
			if d.GetWeight() == 0 {
				continue // Istio drops zero-weight destinations
			}
			cw := &routepb.WeightedCluster_ClusterWeight{
				Name:   g.destinationCluster(d.GetDestination(), ns, port),
				Weight: wrapperspb.UInt32(uint32(d.GetWeight())),
			}
			if h := d.GetHeaders(); h != nil {
				ops := translateHeaders(h)
				cw.RequestHeadersToAdd, cw.RequestHeadersToRemove = ops.reqAdd, ops.reqRemove
				cw.ResponseHeadersToAdd, cw.ResponseHeadersToRemove = ops.respAdd, ops.respRemove
				if ops.authority != "" {
					cw.HostRewriteSpecifier = &routepb.WeightedCluster_ClusterWeight_HostRewriteLiteral{HostRewriteLiteral: ops.authority}
				}
			}
			if hp := g.hashPolicy(d.GetDestination(), ns, port); hp != nil {
				a.HashPolicy = append(a.HashPolicy, hp)
			}
			wc.Clusters = append(wc.Clusters, cw)
		}
		a.ClusterSpecifier = &routepb.RouteAction_WeightedClusters{WeightedClusters: wc}
	}
	a.RetryPolicy = retryPolicy(retries, hashed)
	return a
}

// setTimeout is Istio's for Envoy sidecars: the route timeout (0s, disabled, unless the
// VirtualService sets one), repeated as max_grpc_timeout.
func setTimeout(a *routepb.RouteAction, timeout *durationpb.Duration) {
	d := time.Duration(0)
	if timeout != nil {
		d = timeout.AsDuration()
	}
	a.Timeout = durationpb.New(d)
	a.MaxGrpcTimeout = durationpb.New(d) //nolint:staticcheck // Istio still sets the deprecated field for Envoy sidecars
}

func mirrorPolicy(cluster string, f *corepb.RuntimeFractionalPercent) *routepb.RouteAction_RequestMirrorPolicy {
	return &routepb.RouteAction_RequestMirrorPolicy{Cluster: cluster, RuntimeFraction: f, TraceSampled: wrapperspb.Bool(false)}
}

// mirrorFraction: percentage (parts per million), else the legacy integer percent, else
// 100%; an explicit 0 means no mirroring (nil).
func mirrorFraction(p *networkingv1alpha3.Percent, legacy *wrapperspb.UInt32Value) *corepb.RuntimeFractionalPercent {
	switch {
	case p != nil:
		if p.GetValue() <= 0 {
			return nil
		}
		return &corepb.RuntimeFractionalPercent{DefaultValue: percentToFraction(p.GetValue())}
	case legacy != nil:
		if legacy.GetValue() == 0 {
			return nil
		}
		return &corepb.RuntimeFractionalPercent{DefaultValue: intPercent(int32(legacy.GetValue()))}
	}
	return &corepb.RuntimeFractionalPercent{DefaultValue: intPercent(100)}
}

func intPercent(p int32) *typepb.FractionalPercent {
	return &typepb.FractionalPercent{Numerator: uint32(p), Denominator: typepb.FractionalPercent_HUNDRED}
}

// percentToFraction is Istio's translation of a Percent: parts per million.
func percentToFraction(v float64) *typepb.FractionalPercent {
	return &typepb.FractionalPercent{Numerator: uint32(v * 10000), Denominator: typepb.FractionalPercent_MILLION}
}

// retryPolicy is Istio's ConvertPolicy: nil → the default policy (without the
// previous-hosts predicate for consistent-hash routes); attempts 0 → no policy.
func retryPolicy(r *networkingv1alpha3.HTTPRetry, hashed bool) *routepb.RetryPolicy {
	p := defaultRetryPolicy()
	if hashed {
		p.RetryHostPredicate = nil
	}
	if r == nil {
		return p
	}
	if r.GetAttempts() <= 0 {
		return nil
	}
	p.NumRetries = wrapperspb.UInt32(uint32(r.GetAttempts()))
	if r.GetRetryOn() != "" {
		var on []string
		for _, tok := range strings.Split(r.GetRetryOn(), ",") {
			tok = strings.TrimSpace(tok)
			if tok == "" {
				continue
			}
			if code, err := strconv.Atoi(tok); err == nil && http.StatusText(code) != "" {
				p.RetriableStatusCodes = append(p.RetriableStatusCodes, uint32(code))
				continue
			}
			on = append(on, tok)
		}
		p.RetryOn = strings.Join(on, ",")
		if len(p.RetriableStatusCodes) > 0 && !strings.Contains(p.RetryOn, "retriable-status-codes") {
			p.RetryOn += ",retriable-status-codes"
		}
	}
	if d := r.GetPerTryTimeout(); d != nil {
		p.PerTryTimeout = durationpb.New(d.AsDuration())
	}
	if b := r.GetRetryIgnorePreviousHosts(); b != nil {
		p.RetryHostPredicate = nil
		if b.GetValue() {
			p.RetryHostPredicate = []*routepb.RetryPolicy_RetryHostPredicate{previousHosts()}
		}
	}
	if r.GetRetryRemoteLocalities().GetValue() {
		p.RetryPriority = &routepb.RetryPolicy_RetryPriority{
			Name:       "envoy.retry_priorities.previous_priorities",
			ConfigType: &routepb.RetryPolicy_RetryPriority_TypedConfig{TypedConfig: mustAny(&previousprioritiespb.PreviousPrioritiesConfig{UpdateFrequency: 2})},
		}
	}
	if d := r.GetBackoff(); d != nil {
		p.RetryBackOff = &routepb.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(d.AsDuration())}
	}
	return p
}

type headerOps struct {
	reqAdd, respAdd       []*corepb.HeaderValueOption
	reqRemove, respRemove []string
	authority             string // host/:authority from set (else add): Istio makes it host_rewrite_literal
}

// translateHeaders is Istio's: set → OVERWRITE_IF_EXISTS_OR_ADD, add →
// APPEND_IF_EXISTS_OR_ADD, each sorted by key; pseudo-headers and host are dropped.
func translateHeaders(h *networkingv1alpha3.Headers) headerOps {
	reqSet, setAuth := appendHeaders(h.GetRequest().GetSet(), corepb.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD)
	reqAdd, addAuth := appendHeaders(h.GetRequest().GetAdd(), corepb.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD)
	respSet, _ := appendHeaders(h.GetResponse().GetSet(), corepb.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD)
	respAdd, _ := appendHeaders(h.GetResponse().GetAdd(), corepb.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD)
	return headerOps{
		reqAdd: append(reqSet, reqAdd...), respAdd: append(respSet, respAdd...),
		reqRemove: dropInternal(h.GetRequest().GetRemove()), respRemove: dropInternal(h.GetResponse().GetRemove()),
		authority: cmp.Or(setAuth, addAuth),
	}
}

func internalHeader(k string) bool { return strings.HasPrefix(k, ":") || strings.EqualFold(k, "host") }

func appendHeaders(m map[string]string, action corepb.HeaderValueOption_HeaderAppendAction) ([]*corepb.HeaderValueOption, string) {
	var out []*corepb.HeaderValueOption
	authority := ""
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if strings.EqualFold(k, ":authority") || strings.EqualFold(k, "host") {
			authority = m[k]
		}
		if internalHeader(k) {
			continue
		}
		out = append(out, &corepb.HeaderValueOption{Header: &corepb.HeaderValue{Key: k, Value: m[k]}, AppendAction: action})
	}
	return out, authority
}

func dropInternal(keys []string) []string {
	var out []string
	for _, k := range keys {
		if !internalHeader(k) {
			out = append(out, k)
		}
	}
	return out
}

var redirectCodes = map[uint32]routepb.RedirectAction_RedirectResponseCode{
	301: routepb.RedirectAction_MOVED_PERMANENTLY, 302: routepb.RedirectAction_FOUND, 303: routepb.RedirectAction_SEE_OTHER,
	307: routepb.RedirectAction_TEMPORARY_REDIRECT, 308: routepb.RedirectAction_PERMANENT_REDIRECT,
}

// translateRedirect is Istio's redirect: path_redirect always (the uri, "" keeps the
// path), the explicit or derived port (dropped when it is the scheme's default), and
// response code 301 unless set.
func translateRedirect(r *networkingv1alpha3.HTTPRedirect, port uint32) *routepb.Route_Redirect {
	out := &routepb.RedirectAction{
		HostRedirect:         r.GetAuthority(),
		PathRewriteSpecifier: &routepb.RedirectAction_PathRedirect{PathRedirect: r.GetUri()},
		ResponseCode:         redirectCodes[r.GetRedirectCode()],
	}
	if r.GetScheme() != "" {
		out.SchemeRewriteSpecifier = &routepb.RedirectAction_SchemeRedirect{SchemeRedirect: r.GetScheme()}
	}
	if r.GetRedirectPort() != nil {
		switch rp := r.GetRedirectPort().(type) {
		case *networkingv1alpha3.HTTPRedirect_DerivePort:
			if rp.DerivePort == networkingv1alpha3.HTTPRedirect_FROM_REQUEST_PORT {
				out.PortRedirect = port
			}
		case *networkingv1alpha3.HTTPRedirect_Port:
			out.PortRedirect = rp.Port
		}
		scheme := cmp.Or(r.GetScheme(), "http")
		if (out.PortRedirect == 80 && scheme == "http") || (out.PortRedirect == 443 && scheme == "https") {
			out.PortRedirect = 0
		}
	}
	return &routepb.Route_Redirect{Redirect: out}
}

// translateFault is Istio's: delay percentage from percentage, else the legacy integer
// percent (0 when unset); abort percentage only from percentage; exponential delays and
// other abort kinds are dropped.
func translateFault(f *networkingv1alpha3.HTTPFaultInjection) *faultpb.HTTPFault {
	if f == nil {
		return nil
	}
	out := &faultpb.HTTPFault{}
	if d := f.GetDelay(); d != nil {
		if fd := d.GetFixedDelay(); fd != nil {
			out.Delay = &faultcommonpb.FaultDelay{FaultDelaySecifier: &faultcommonpb.FaultDelay_FixedDelay{FixedDelay: durationpb.New(fd.AsDuration())}}
			if d.GetPercentage() != nil {
				out.Delay.Percentage = percentToFraction(d.GetPercentage().GetValue())
			} else {
				out.Delay.Percentage = intPercent(d.GetPercent()) //nolint:staticcheck // the legacy field still applies
			}
		}
	}
	if a := f.GetAbort(); a != nil {
		abort := &faultpb.FaultAbort{}
		if a.GetPercentage() != nil {
			abort.Percentage = percentToFraction(a.GetPercentage().GetValue())
		}
		switch e := a.GetErrorType().(type) {
		case *networkingv1alpha3.HTTPFaultInjection_Abort_HttpStatus:
			abort.ErrorType = &faultpb.FaultAbort_HttpStatus{HttpStatus: uint32(e.HttpStatus)}
			out.Abort = abort
		case *networkingv1alpha3.HTTPFaultInjection_Abort_GrpcStatus:
			if code, ok := grpcCodes[e.GrpcStatus]; ok {
				abort.ErrorType = &faultpb.FaultAbort_GrpcStatus{GrpcStatus: code}
				out.Abort = abort
			}
		}
	}
	if out.Delay == nil && out.Abort == nil {
		return nil
	}
	return out
}

var grpcCodes = map[string]uint32{
	"OK": 0, "CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4, "NOT_FOUND": 5,
	"ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8, "FAILED_PRECONDITION": 9,
	"ABORTED": 10, "OUT_OF_RANGE": 11, "UNIMPLEMENTED": 12, "INTERNAL": 13, "UNAVAILABLE": 14,
	"DATA_LOSS": 15, "UNAUTHENTICATED": 16,
}

// hashPolicy is the route hash policy for a destination whose DestinationRule uses
// consistent hashing (subset port-level, subset, port-level, then top-level settings).
func (g *generator) hashPolicy(d *networkingv1alpha3.Destination, ns string, port uint32) *routepb.RouteAction_HashPolicy {
	host := model.ResolveHost(d.GetHost(), ns)
	dr := g.m.DestinationRule(g.p.Namespace, g.p.Labels, host)
	if dr == nil {
		return nil
	}
	p := d.GetPort().GetNumber()
	if p == 0 {
		p = port
	}
	ch := dr.Policy(p, d.GetSubset()).GetLoadBalancer().GetConsistentHash()
	switch k := ch.GetHashKey().(type) {
	case *networkingv1alpha3.LoadBalancerSettings_ConsistentHashLB_HttpHeaderName:
		return &routepb.RouteAction_HashPolicy{PolicySpecifier: &routepb.RouteAction_HashPolicy_Header_{Header: &routepb.RouteAction_HashPolicy_Header{HeaderName: k.HttpHeaderName}}}
	case *networkingv1alpha3.LoadBalancerSettings_ConsistentHashLB_HttpCookie:
		c := k.HttpCookie
		return &routepb.RouteAction_HashPolicy{PolicySpecifier: &routepb.RouteAction_HashPolicy_Cookie_{Cookie: &routepb.RouteAction_HashPolicy_Cookie{Name: c.GetName(), Ttl: c.GetTtl(), Path: c.GetPath()}}}
	case *networkingv1alpha3.LoadBalancerSettings_ConsistentHashLB_UseSourceIp:
		return &routepb.RouteAction_HashPolicy{PolicySpecifier: &routepb.RouteAction_HashPolicy_ConnectionProperties_{ConnectionProperties: &routepb.RouteAction_HashPolicy_ConnectionProperties{SourceIp: k.UseSourceIp}}}
	case *networkingv1alpha3.LoadBalancerSettings_ConsistentHashLB_HttpQueryParameterName:
		return &routepb.RouteAction_HashPolicy{PolicySpecifier: &routepb.RouteAction_HashPolicy_QueryParameter_{QueryParameter: &routepb.RouteAction_HashPolicy_QueryParameter{Name: k.HttpQueryParameterName}}}
	}
	return nil
}

// translateMatch is Istio's route match; nil matches everything (prefix "/"). Header
// matchers are sorted by name, then :method, :authority and :scheme follow.
func translateMatch(m *networkingv1alpha3.HTTPMatchRequest) *routepb.RouteMatch {
	out := &routepb.RouteMatch{PathSpecifier: &routepb.RouteMatch_Prefix{Prefix: "/"}}
	if m == nil {
		return out
	}
	for name, sm := range m.GetHeaders() {
		out.Headers = append(out.Headers, headerMatcher(name, sm))
	}
	for name, sm := range m.GetWithoutHeaders() {
		h := headerMatcher(name, sm)
		h.InvertMatch = true
		h.TreatMissingHeaderAsEmpty = !presentMatch(sm)
		out.Headers = append(out.Headers, h)
	}
	slices.SortStableFunc(out.Headers, func(a, b *routepb.HeaderMatcher) int { return cmp.Compare(a.GetName(), b.GetName()) })
	switch u := m.GetUri().GetMatchType().(type) {
	case *networkingv1alpha3.StringMatch_Exact:
		out.PathSpecifier = &routepb.RouteMatch_Path{Path: u.Exact}
	case *networkingv1alpha3.StringMatch_Prefix:
		out.PathSpecifier = &routepb.RouteMatch_Prefix{Prefix: u.Prefix}
	case *networkingv1alpha3.StringMatch_Regex:
		out.PathSpecifier = &routepb.RouteMatch_SafeRegex{SafeRegex: &matcherpb.RegexMatcher{Regex: u.Regex}}
	}
	out.CaseSensitive = wrapperspb.Bool(!m.GetIgnoreUriCase())
	if m.GetMethod() != nil {
		out.Headers = append(out.Headers, headerMatcher(":method", m.GetMethod()))
	}
	if m.GetAuthority() != nil {
		out.Headers = append(out.Headers, headerMatcher(":authority", m.GetAuthority()))
	}
	if m.GetScheme() != nil {
		out.Headers = append(out.Headers, headerMatcher(":scheme", m.GetScheme()))
	}
	for _, k := range slices.Sorted(maps.Keys(m.GetQueryParams())) {
		sm := m.GetQueryParams()[k]
		q := &routepb.QueryParameterMatcher{Name: k}
		if presentMatch(sm) {
			q.QueryParameterMatchSpecifier = &routepb.QueryParameterMatcher_PresentMatch{PresentMatch: true}
		} else {
			q.QueryParameterMatchSpecifier = &routepb.QueryParameterMatcher_StringMatch{StringMatch: stringMatcher(sm)}
		}
		out.QueryParameters = append(out.QueryParameters, q)
	}
	return out
}

// presentMatch: an empty StringMatch ({}) or the regex "*" means "present", as in Istio.
func presentMatch(sm *networkingv1alpha3.StringMatch) bool {
	if sm.GetMatchType() == nil {
		return true
	}
	re, ok := sm.GetMatchType().(*networkingv1alpha3.StringMatch_Regex)
	return ok && re.Regex == "*"
}

func headerMatcher(name string, sm *networkingv1alpha3.StringMatch) *routepb.HeaderMatcher {
	h := &routepb.HeaderMatcher{Name: name}
	if presentMatch(sm) {
		h.HeaderMatchSpecifier = &routepb.HeaderMatcher_PresentMatch{PresentMatch: true}
	} else {
		h.HeaderMatchSpecifier = &routepb.HeaderMatcher_StringMatch{StringMatch: stringMatcher(sm)}
	}
	return h
}

func stringMatcher(sm *networkingv1alpha3.StringMatch) *matcherpb.StringMatcher {
	switch x := sm.GetMatchType().(type) {
	case *networkingv1alpha3.StringMatch_Exact:
		return &matcherpb.StringMatcher{MatchPattern: &matcherpb.StringMatcher_Exact{Exact: x.Exact}}
	case *networkingv1alpha3.StringMatch_Prefix:
		return &matcherpb.StringMatcher{MatchPattern: &matcherpb.StringMatcher_Prefix{Prefix: x.Prefix}}
	case *networkingv1alpha3.StringMatch_Regex:
		return &matcherpb.StringMatcher{MatchPattern: &matcherpb.StringMatcher_SafeRegex{SafeRegex: &matcherpb.RegexMatcher{Regex: x.Regex}}}
	}
	return nil
}
