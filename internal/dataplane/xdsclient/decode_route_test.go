package xdsclient

import (
	"strings"
	"testing"
	"time"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	commonfaultpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/fault/v3"
	faultpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	matcherpb "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typepb "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

func toCluster(name string) *routepb.Route_Route {
	return &routepb.Route_Route{Route: &routepb.RouteAction{ClusterSpecifier: &routepb.RouteAction_Cluster{Cluster: name}}}
}

func prefix(p string) *routepb.RouteMatch {
	return &routepb.RouteMatch{PathSpecifier: &routepb.RouteMatch_Prefix{Prefix: p}}
}

// decodeOneRoute decodes a route config holding r and returns its decoded route.
func decodeOneRoute(t *testing.T, r *routepb.Route) (resource.Route, error) {
	t.Helper()
	rc, err := DecodeRouteConfig(&routepb.RouteConfiguration{Name: "9080", VirtualHosts: []*routepb.VirtualHost{{
		Name: "vh", Domains: []string{"*"}, Routes: []*routepb.Route{r},
	}}})
	if err != nil {
		return resource.Route{}, err
	}
	return rc.VirtualHosts[0].Routes[0], nil
}

func TestDecodeRoute(t *testing.T) {
	sm := func(m *matcherpb.StringMatcher) *routepb.HeaderMatcher_StringMatch {
		return &routepb.HeaderMatcher_StringMatch{StringMatch: m}
	}
	faultAny := func(f *faultpb.HTTPFault) map[string]*anypb.Any {
		return map[string]*anypb.Any{"envoy.filters.http.fault": mustAny(t, f)}
	}
	tests := []struct {
		name  string
		route *routepb.Route
		check func(t *testing.T, r resource.Route)
	}{
		{"defaults", &routepb.Route{Match: prefix("/"), Action: toCluster("c")}, func(t *testing.T, r resource.Route) {
			t.Helper()
			if r.Match.PathKind != resource.PathPrefix || r.Match.Path != "/" || !r.Match.CaseSensitive {
				t.Errorf("match = %+v", r.Match)
			}
			if a := r.Action; a.Cluster != "c" || a.Timeout != 15*time.Second || a.ClusterNotFoundCode != 503 || a.RetryPolicy != nil {
				t.Errorf("action = %+v", a)
			}
		}},
		{"exact path, case insensitive", &routepb.Route{
			Match:  &routepb.RouteMatch{PathSpecifier: &routepb.RouteMatch_Path{Path: "/a"}, CaseSensitive: wrapperspb.Bool(false)},
			Action: toCluster("c"),
		}, func(t *testing.T, r resource.Route) {
			t.Helper()
			if r.Match.PathKind != resource.PathExact || r.Match.Path != "/a" || r.Match.CaseSensitive {
				t.Errorf("match = %+v", r.Match)
			}
		}},
		{"regex path anchored", &routepb.Route{
			Match:  &routepb.RouteMatch{PathSpecifier: &routepb.RouteMatch_SafeRegex{SafeRegex: &matcherpb.RegexMatcher{Regex: "/v[0-9]"}}},
			Action: toCluster("c"),
		}, func(t *testing.T, r resource.Route) {
			t.Helper()
			if r.Match.PathKind != resource.PathRegex || !r.Match.Regex.MatchString("/v1") || r.Match.Regex.MatchString("/v1/x") {
				t.Errorf("regex = %v", r.Match.Regex)
			}
		}},
		{"path separated prefix", &routepb.Route{
			Match:  &routepb.RouteMatch{PathSpecifier: &routepb.RouteMatch_PathSeparatedPrefix{PathSeparatedPrefix: "/api"}},
			Action: toCluster("c"),
		}, func(t *testing.T, r resource.Route) {
			t.Helper()
			if r.Match.PathKind != resource.PathSeparated || r.Match.Path != "/api" {
				t.Errorf("match = %+v", r.Match)
			}
		}},
		{"headers and query params", &routepb.Route{
			Match: &routepb.RouteMatch{PathSpecifier: &routepb.RouteMatch_Prefix{Prefix: "/"},
				Headers: []*routepb.HeaderMatcher{
					{Name: ":Method", HeaderMatchSpecifier: sm(&matcherpb.StringMatcher{MatchPattern: &matcherpb.StringMatcher_Exact{Exact: "GET"}})},
					{Name: "x-user", HeaderMatchSpecifier: sm(&matcherpb.StringMatcher{MatchPattern: &matcherpb.StringMatcher_Prefix{Prefix: "ja"}, IgnoreCase: true})},
					{Name: "x-re", HeaderMatchSpecifier: sm(&matcherpb.StringMatcher{MatchPattern: &matcherpb.StringMatcher_SafeRegex{SafeRegex: &matcherpb.RegexMatcher{Regex: "a+"}}})},
					{Name: "x-present", HeaderMatchSpecifier: &routepb.HeaderMatcher_PresentMatch{PresentMatch: true}},
					{Name: "x-absent", HeaderMatchSpecifier: &routepb.HeaderMatcher_PresentMatch{PresentMatch: false}},
					{Name: "x-not", HeaderMatchSpecifier: sm(&matcherpb.StringMatcher{MatchPattern: &matcherpb.StringMatcher_Suffix{Suffix: "z"}}), InvertMatch: true},
				},
				QueryParameters: []*routepb.QueryParameterMatcher{
					{Name: "q", QueryParameterMatchSpecifier: &routepb.QueryParameterMatcher_StringMatch{StringMatch: &matcherpb.StringMatcher{MatchPattern: &matcherpb.StringMatcher_Contains{Contains: "x"}}}},
					{Name: "p", QueryParameterMatchSpecifier: &routepb.QueryParameterMatcher_PresentMatch{PresentMatch: true}},
				},
			},
			Action: toCluster("c"),
		}, func(t *testing.T, r resource.Route) {
			t.Helper()
			h := r.Match.Headers
			if h[0].Name != ":method" || h[0].Value.Kind != resource.MatchExact || h[0].Value.Value != "GET" {
				t.Errorf("headers[0] = %+v", h[0])
			}
			if h[1].Value.Kind != resource.MatchPrefix || !h[1].Value.IgnoreCase {
				t.Errorf("headers[1] = %+v", h[1])
			}
			if h[2].Value.Kind != resource.MatchRegex || !h[2].Value.Regex.MatchString("aaa") || h[2].Value.Regex.MatchString("ab") {
				t.Errorf("headers[2] = %+v", h[2])
			}
			if !h[3].Present || h[3].Invert || !h[4].Present || !h[4].Invert || !h[5].Invert || h[5].Value.Kind != resource.MatchSuffix {
				t.Errorf("headers[3:] = %+v", h[3:])
			}
			q := r.Match.QueryParams
			if q[0].Name != "q" || q[0].Value.Kind != resource.MatchContains || q[0].Value.Value != "x" || !q[1].Present {
				t.Errorf("query = %+v", q)
			}
		}},
		{"weighted clusters, rewrites, retry, mirror, headers, metadata", &routepb.Route{
			Name:  "reviews.default",
			Match: prefix("/r"),
			Action: &routepb.Route_Route{Route: &routepb.RouteAction{
				ClusterSpecifier: &routepb.RouteAction_WeightedClusters{WeightedClusters: &routepb.WeightedCluster{Clusters: []*routepb.WeightedCluster_ClusterWeight{
					{Name: "v1", Weight: wrapperspb.UInt32(80), RequestHeadersToAdd: []*corepb.HeaderValueOption{{Header: &corepb.HeaderValue{Key: "x-v", Value: "1"}}}},
					{Name: "v2", Weight: wrapperspb.UInt32(20), HostRewriteSpecifier: &routepb.WeightedCluster_ClusterWeight_HostRewriteLiteral{HostRewriteLiteral: "v2.local"}, ResponseHeadersToRemove: []string{"x-drop"}},
				}}},
				ClusterNotFoundResponseCode: routepb.RouteAction_NOT_FOUND,
				PrefixRewrite:               "/new",
				RegexRewrite:                &matcherpb.RegexMatchAndSubstitute{Pattern: &matcherpb.RegexMatcher{Regex: "^/r/(.*)$"}, Substitution: `/\1`},
				HostRewriteSpecifier:        &routepb.RouteAction_HostRewriteLiteral{HostRewriteLiteral: "ratings"},
				Timeout:                     durationpb.New(3 * time.Second),
				RetryPolicy: &routepb.RetryPolicy{
					RetryOn: "connect-failure, 5xx,refused-stream", NumRetries: wrapperspb.UInt32(2),
					PerTryTimeout:                 durationpb.New(time.Second),
					RetriableStatusCodes:          []uint32{503},
					RetryHostPredicate:            []*routepb.RetryPolicy_RetryHostPredicate{{Name: "envoy.retry_host_predicates.previous_hosts"}},
					HostSelectionRetryMaxAttempts: 5,
					RetryBackOff:                  &routepb.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(100 * time.Millisecond)},
				},
				RequestMirrorPolicies: []*routepb.RouteAction_RequestMirrorPolicy{
					{Cluster: "m1"},
					{Cluster: "m2", RuntimeFraction: &corepb.RuntimeFractionalPercent{DefaultValue: &typepb.FractionalPercent{Numerator: 2500, Denominator: typepb.FractionalPercent_TEN_THOUSAND}}},
				},
			}},
			RequestHeadersToAdd: []*corepb.HeaderValueOption{
				{Header: &corepb.HeaderValue{Key: "a", Value: "1"}},
				{Header: &corepb.HeaderValue{Key: "b", Value: "2"}, AppendAction: corepb.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD},
				{Header: &corepb.HeaderValue{Key: "c", Value: "3"}, Append: wrapperspb.Bool(false)},
			},
			RequestHeadersToRemove:  []string{"x-rm"},
			ResponseHeadersToAdd:    []*corepb.HeaderValueOption{{Header: &corepb.HeaderValue{Key: "r", RawValue: []byte("raw")}}},
			ResponseHeadersToRemove: []string{"server"},
			Metadata: &corepb.Metadata{FilterMetadata: map[string]*structpb.Struct{"istio": {Fields: map[string]*structpb.Value{
				"config": structpb.NewStringValue("/apis/networking.istio.io/v1/namespaces/default/virtual-service/reviews"),
			}}}},
			Decorator: &routepb.Decorator{Operation: "reviews:9080/*"},
		}, func(t *testing.T, r resource.Route) {
			t.Helper()
			a := r.Action
			if len(a.WeightedClusters) != 2 || a.WeightedClusters[0].Weight != 80 || a.WeightedClusters[0].RequestHeadersToAdd[0].Key != "x-v" ||
				a.WeightedClusters[1].HostRewriteLiteral != "v2.local" || a.WeightedClusters[1].ResponseHeadersToRemove[0] != "x-drop" {
				t.Errorf("weighted = %+v", a.WeightedClusters)
			}
			if a.ClusterNotFoundCode != 404 || a.PrefixRewrite != "/new" || a.HostRewriteLiteral != "ratings" || a.Timeout != 3*time.Second {
				t.Errorf("action = %+v", a)
			}
			if got := a.RegexRewrite.Pattern.ReplaceAllString("/r/x", a.RegexRewrite.Substitution); a.RegexRewrite.Substitution != `/\1` || got == "" {
				t.Errorf("regex rewrite = %+v", a.RegexRewrite)
			}
			rp := a.RetryPolicy
			if strings.Join(rp.RetryOn, "|") != "connect-failure|5xx|refused-stream" || rp.NumRetries != 2 || rp.PerTryTimeout != time.Second ||
				rp.RetriableStatusCodes[0] != 503 || !rp.AvoidPreviousHosts || rp.HostSelectionRetryMaxAttempts != 5 ||
				rp.BackOffBase != 100*time.Millisecond || rp.BackOffMax != time.Second {
				t.Errorf("retry = %+v", rp)
			}
			if len(a.Mirrors) != 2 || a.Mirrors[0].Percent != 100 || a.Mirrors[1].Cluster != "m2" || a.Mirrors[1].Percent != 25 {
				t.Errorf("mirrors = %+v", a.Mirrors)
			}
			h := r.RequestHeadersToAdd
			if !h[0].Append || h[1].Append || h[2].Append || r.ResponseHeadersToAdd[0].Value != "raw" || r.RequestHeadersToRemove[0] != "x-rm" || r.ResponseHeadersToRemove[0] != "server" {
				t.Errorf("headers = %+v %+v", h, r.ResponseHeadersToAdd)
			}
			if r.Name != "reviews.default" || r.VirtualService != "/apis/networking.istio.io/v1/namespaces/default/virtual-service/reviews" || r.Operation != "reviews:9080/*" {
				t.Errorf("route = %+v", r)
			}
		}},
		{"retry defaults", &routepb.Route{Match: prefix("/"), Action: &routepb.Route_Route{Route: &routepb.RouteAction{
			ClusterSpecifier: &routepb.RouteAction_Cluster{Cluster: "c"}, RetryPolicy: &routepb.RetryPolicy{RetryOn: "5xx"},
		}}}, func(t *testing.T, r resource.Route) {
			t.Helper()
			if rp := r.Action.RetryPolicy; rp.NumRetries != 1 || rp.BackOffBase != 25*time.Millisecond || rp.BackOffMax != 250*time.Millisecond {
				t.Errorf("retry = %+v", rp)
			}
		}},
		{"redirect", &routepb.Route{Match: prefix("/"), Action: &routepb.Route_Redirect{Redirect: &routepb.RedirectAction{
			SchemeRewriteSpecifier: &routepb.RedirectAction_HttpsRedirect{HttpsRedirect: true},
			HostRedirect:           "new.example", PortRedirect: 8443,
			PathRewriteSpecifier: &routepb.RedirectAction_PathRedirect{PathRedirect: "/moved"},
			ResponseCode:         routepb.RedirectAction_PERMANENT_REDIRECT, StripQuery: true,
		}}}, func(t *testing.T, r resource.Route) {
			t.Helper()
			want := resource.Redirect{Scheme: "https", Host: "new.example", Port: 8443, Path: "/moved", Code: 308, StripQuery: true}
			if r.Redirect == nil || *r.Redirect != want || r.Action != nil {
				t.Errorf("redirect = %+v", r.Redirect)
			}
		}},
		{"redirect defaults", &routepb.Route{Match: prefix("/"), Action: &routepb.Route_Redirect{Redirect: &routepb.RedirectAction{
			PathRewriteSpecifier: &routepb.RedirectAction_PrefixRewrite{PrefixRewrite: "/v2"},
		}}}, func(t *testing.T, r resource.Route) {
			t.Helper()
			if r.Redirect.Code != 301 || r.Redirect.PrefixRewrite != "/v2" || r.Redirect.Scheme != "" {
				t.Errorf("redirect = %+v", r.Redirect)
			}
		}},
		{"direct response", &routepb.Route{Match: prefix("/"), Action: &routepb.Route_DirectResponse{DirectResponse: &routepb.DirectResponseAction{
			Status: 418, Body: &corepb.DataSource{Specifier: &corepb.DataSource_InlineString{InlineString: "teapot"}},
		}}}, func(t *testing.T, r resource.Route) {
			t.Helper()
			if r.DirectResponse == nil || *r.DirectResponse != (resource.DirectResponse{Status: 418, Body: "teapot"}) {
				t.Errorf("direct = %+v", r.DirectResponse)
			}
		}},
		{"fault", &routepb.Route{Match: prefix("/"), Action: toCluster("c"), TypedPerFilterConfig: faultAny(&faultpb.HTTPFault{
			Delay: &commonfaultpb.FaultDelay{
				FaultDelaySecifier: &commonfaultpb.FaultDelay_FixedDelay{FixedDelay: durationpb.New(2 * time.Second)},
				Percentage:         &typepb.FractionalPercent{Numerator: 500000, Denominator: typepb.FractionalPercent_MILLION},
			},
			Abort: &faultpb.FaultAbort{
				ErrorType:  &faultpb.FaultAbort_HttpStatus{HttpStatus: 503},
				Percentage: &typepb.FractionalPercent{Numerator: 10},
			},
		})}, func(t *testing.T, r resource.Route) {
			t.Helper()
			want := resource.Fault{DelayPercent: 50, Delay: 2 * time.Second, AbortPercent: 10, AbortStatus: 503, AbortGRPC: -1}
			if r.Fault == nil || *r.Fault != want {
				t.Errorf("fault = %+v", r.Fault)
			}
		}},
		{"grpc fault", &routepb.Route{Match: prefix("/"), Action: toCluster("c"), TypedPerFilterConfig: faultAny(&faultpb.HTTPFault{
			Abort: &faultpb.FaultAbort{ErrorType: &faultpb.FaultAbort_GrpcStatus{GrpcStatus: 14}, Percentage: &typepb.FractionalPercent{Numerator: 100}},
		})}, func(t *testing.T, r resource.Route) {
			t.Helper()
			if r.Fault.AbortGRPC != 14 || r.Fault.AbortStatus != 0 || r.Fault.AbortPercent != 100 {
				t.Errorf("fault = %+v", r.Fault)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := decodeOneRoute(t, tt.route)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			tt.check(t, r)
		})
	}
}

func TestDecodeRouteErrors(t *testing.T) {
	tests := []struct {
		name  string
		route *routepb.Route
		want  string
	}{
		{"invalid regex", &routepb.Route{Match: &routepb.RouteMatch{PathSpecifier: &routepb.RouteMatch_SafeRegex{SafeRegex: &matcherpb.RegexMatcher{Regex: "("}}}, Action: toCluster("c")},
			`virtual_hosts[0].routes[0].match.safe_regex: invalid regex "("`},
		{"runtime fraction", &routepb.Route{Match: &routepb.RouteMatch{PathSpecifier: &routepb.RouteMatch_Prefix{Prefix: "/"}, RuntimeFraction: &corepb.RuntimeFractionalPercent{DefaultValue: &typepb.FractionalPercent{}}}, Action: toCluster("c")},
			"virtual_hosts[0].routes[0].match.runtime_fraction: not supported"},
		{"grpc matcher", &routepb.Route{Match: &routepb.RouteMatch{PathSpecifier: &routepb.RouteMatch_Prefix{Prefix: "/"}, Grpc: &routepb.RouteMatch_GrpcRouteMatchOptions{}}, Action: toCluster("c")},
			"match.grpc: not supported"},
		{"tls context", &routepb.Route{Match: &routepb.RouteMatch{PathSpecifier: &routepb.RouteMatch_Prefix{Prefix: "/"}, TlsContext: &routepb.RouteMatch_TlsContextMatchOptions{}}, Action: toCluster("c")},
			"match.tls_context: not supported"},
		{"header regex", &routepb.Route{Match: &routepb.RouteMatch{PathSpecifier: &routepb.RouteMatch_Prefix{Prefix: "/"}, Headers: []*routepb.HeaderMatcher{{Name: "x", HeaderMatchSpecifier: &routepb.HeaderMatcher_StringMatch{StringMatch: &matcherpb.StringMatcher{MatchPattern: &matcherpb.StringMatcher_SafeRegex{SafeRegex: &matcherpb.RegexMatcher{Regex: "a)"}}}}}}}, Action: toCluster("c")},
			`match.headers[0].string_match.safe_regex: invalid regex "a)"`},
		{"cluster header", &routepb.Route{Match: prefix("/"), Action: &routepb.Route_Route{Route: &routepb.RouteAction{ClusterSpecifier: &routepb.RouteAction_ClusterHeader{ClusterHeader: "x-c"}}}},
			"routes[0].route.cluster_specifier: *routev3.RouteAction_ClusterHeader is not supported"},
		{"unknown per filter config", &routepb.Route{Match: prefix("/"), Action: toCluster("c"), TypedPerFilterConfig: map[string]*anypb.Any{"envoy.filters.http.lua": mustAny(t, &routepb.Route{})}},
			`typed_per_filter_config["envoy.filters.http.lua"]: not supported`},
		{"pgv: empty cluster name", &routepb.Route{Match: prefix("/"), Action: toCluster("")},
			"invalid: "},
		{"back off max below base", &routepb.Route{Match: prefix("/"), Action: &routepb.Route_Route{Route: &routepb.RouteAction{ClusterSpecifier: &routepb.RouteAction_Cluster{Cluster: "c"},
			RetryPolicy: &routepb.RetryPolicy{RetryBackOff: &routepb.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(time.Second), MaxInterval: durationpb.New(time.Millisecond)}}}}},
			"retry_policy.retry_back_off.max_interval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeOneRoute(t, tt.route)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestDecodeVirtualHost(t *testing.T) {
	rc, err := DecodeRouteConfig(&routepb.RouteConfiguration{Name: "9080", VirtualHosts: []*routepb.VirtualHost{{
		Name: "reviews:9080", Domains: []string{"reviews", "reviews:9080"},
		IncludeRequestAttemptCount: true,
		RetryPolicy:                &routepb.RetryPolicy{RetryOn: "connect-failure", NumRetries: wrapperspb.UInt32(0)},
		RequestHeadersToAdd:        []*corepb.HeaderValueOption{{Header: &corepb.HeaderValue{Key: "k", Value: "v"}}},
		RequestHeadersToRemove:     []string{"x"},
		Routes:                     []*routepb.Route{{Match: prefix("/"), Action: toCluster("c")}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	vh := rc.VirtualHosts[0]
	if rc.Name != "9080" || vh.Name != "reviews:9080" || len(vh.Domains) != 2 || !vh.IncludeAttemptCount ||
		vh.RetryPolicy.NumRetries != 0 || vh.RequestHeadersToAdd[0].Key != "k" || vh.RequestHeadersToRemove[0] != "x" {
		t.Errorf("virtual host = %+v", vh)
	}
}

// ignore_port_in_host_matching (Istio sets it on a gateway's route configurations) is
// decoded, not refused; left unset, the Host is matched as written.
func TestDecodeIgnorePortInHostMatching(t *testing.T) {
	for _, set := range []bool{true, false} {
		rc, err := DecodeRouteConfig(&routepb.RouteConfiguration{Name: "http.8080", IgnorePortInHostMatching: set,
			VirtualHosts: []*routepb.VirtualHost{{Name: "*.example.com:8080", Domains: []string{"*.example.com"}}}})
		if err != nil {
			t.Fatalf("ignore_port_in_host_matching=%v: %v", set, err)
		}
		if rc.IgnorePortInHostMatching != set {
			t.Errorf("decoded ignore_port_in_host_matching = %v, want %v", rc.IgnorePortInHostMatching, set)
		}
	}
}
