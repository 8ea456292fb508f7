package route

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

func TestExplain(t *testing.T) {
	vh := &resource.VirtualHost{Name: "reviews.default.svc.cluster.local:9080", Routes: []resource.Route{
		{Name: "prefix", Match: prefix("/reviews")},
		{Name: "prefix-fold", Match: resource.RouteMatch{PathKind: resource.PathPrefix, Path: "/Reviews"}},
		{Name: "exact", Match: resource.RouteMatch{PathKind: resource.PathExact, Path: "/x", CaseSensitive: true}},
		{Name: "regex", Match: resource.RouteMatch{PathKind: resource.PathRegex, Regex: regexp.MustCompile(`^/v[0-9]$`)}},
		{Name: "separated", Match: resource.RouteMatch{PathKind: resource.PathSeparated, Path: "/api", CaseSensitive: true}},
		{Name: "method", Match: resource.RouteMatch{Headers: []resource.HeaderMatcher{{Name: ":method", Value: exact("GET")}}}},
		{Name: "user", Match: resource.RouteMatch{Headers: []resource.HeaderMatcher{{Name: "end-user", Value: exact("jason")}}}},
		{Name: "not-agent", Match: resource.RouteMatch{Headers: []resource.HeaderMatcher{{Name: "user-agent",
			Value: resource.StringMatcher{Kind: resource.MatchPrefix, Value: "curl", IgnoreCase: true}, Invert: true}}}},
		{Name: "absent", Match: resource.RouteMatch{Headers: []resource.HeaderMatcher{{Name: "x-debug", Present: true, Invert: true}}}},
		{Name: "query", Match: resource.RouteMatch{QueryParams: []resource.QueryParamMatcher{{Name: "v", Value: exact("2")}}}},
		{Name: "query-missing", Match: resource.RouteMatch{QueryParams: []resource.QueryParamMatcher{{Name: "w", Present: true}}}},
		{Name: "catch-all", Match: prefix("/")},
		{Name: "never", Match: prefix("/")},
	}}
	r := req(t, "POST", "http://reviews:9080/ratings?v=1", "User-Agent", "curl/8", "X-Debug", "1")
	got := Explain(vh, r)
	want := []string{
		`prefix: false: path "/ratings" does not start with "/reviews"`,
		`prefix-fold: false: path "/ratings" does not start with "/Reviews" (ignoring case)`,
		`exact: false: path "/ratings" is not "/x"`,
		`regex: false: path "/ratings" does not match regex "^/v[0-9]$"`,
		`separated: false: path "/ratings" is not "/api" and does not start with "/api/"`,
		`method: false: header ":method" is "POST", wants exact "GET"`,
		`user: false: header "end-user" is missing`,
		`not-agent: false: header "user-agent" is "curl/8", wants not prefix "curl" (ignoring case)`,
		`absent: false: header "x-debug" is present, wants it absent`,
		`query: false: query parameter "v" is "1", wants exact "2"`,
		`query-missing: false: query parameter "w" is missing`,
		`catch-all: true: matched`,
	}
	var lines []string
	for _, v := range got {
		lines = append(lines, fmt.Sprintf("%s: %v: %s", v.Route.Name, v.Matched, v.Reason))
	}
	if g, w := strings.Join(lines, "\n"), strings.Join(want, "\n"); g != w {
		t.Errorf("Explain:\n%s\nwant:\n%s", g, w)
	}
	if Explain(nil, r) != nil {
		t.Error("Explain(nil) is not nil")
	}
}

func TestNoRouteExplanation(t *testing.T) {
	rc := &resource.RouteConfig{Name: "9080", VirtualHosts: []resource.VirtualHost{
		{Name: "reviews.default.svc.cluster.local:9080", Domains: []string{"reviews", "reviews:9080"}, Routes: []resource.Route{
			{Name: "r1", Match: prefix("/v1")},
			{Name: "r2", Match: resource.RouteMatch{PathKind: resource.PathPrefix, Path: "/", CaseSensitive: true,
				Headers: []resource.HeaderMatcher{{Name: "end-user", Value: exact("jason")}}}},
		}},
		{Name: "many:80", Domains: []string{"many"}, Routes: func() []resource.Route {
			var rs []resource.Route
			for i := range 8 {
				rs = append(rs, resource.Route{Name: fmt.Sprintf("m%d", i), Match: prefix(fmt.Sprintf("/m%d", i))})
			}
			rs[1].Name = ""
			return rs
		}()},
		{Name: "empty", Domains: []string{"empty"}},
		{Name: "ratings", Domains: []string{"ratings"}},
	}}
	tests := []struct {
		target string
		want   string
	}{
		{"http://reviews:9080/foo?x=1",
			`no route matches GET /foo in virtual host "reviews.default.svc.cluster.local:9080" (route config "9080"): ` +
				`route "r1": path "/foo" does not start with "/v1"; route "r2": header "end-user" is missing`},
		{"http://many/x",
			`no route matches GET /x in virtual host "many:80" (route config "9080"): route "m0": path "/x" does not start with "/m0"; ` +
				`route #2: path "/x" does not start with "/m1"; route "m2": path "/x" does not start with "/m2"; ` +
				`route "m3": path "/x" does not start with "/m3"; route "m4": path "/x" does not start with "/m4"; and 3 more`},
		{"http://empty/x", `no route matches GET /x in virtual host "empty" (route config "9080"): it has no routes`},
		{"http://x:1/", `no virtual host for authority "x:1" in route config "9080"`},
		{"http://ratings:9080/", `no virtual host for authority "ratings:9080" in route config "9080" (without the port, "ratings" would match virtual host "ratings")`},
	}
	for _, tt := range tests {
		r := req(t, "GET", tt.target)
		vh, rt := Select(rc, r)
		if rt != nil {
			t.Fatalf("%s: route %q matched; the test wants none", tt.target, rt.Name)
		}
		got := NoRouteExplanation(rc, vh, r)
		if got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.target, got, tt.want)
		}
		if strings.ContainsAny(got, "\r\n") {
			t.Errorf("explanation is not one line: %q", got)
		}
	}
}

func TestExplanationQuotesRequestData(t *testing.T) {
	vh := &resource.VirtualHost{Name: "v", Routes: []resource.Route{{Name: "u", Match: resource.RouteMatch{
		Headers: []resource.HeaderMatcher{{Name: "x-u", Value: exact("a")}}}}}}
	r := req(t, "GET", "/")
	r.Header.Set("X-U", "tab\there\x01"+strings.Repeat("z", 300))
	got := NoRouteExplanation(&resource.RouteConfig{Name: "rc"}, vh, r)
	if strings.ContainsAny(got, "\t\x01") || len(got) > 300 {
		t.Errorf("request data not escaped and bounded: %q", got)
	}
}
