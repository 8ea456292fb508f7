package route

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

func req(t *testing.T, method, target string, headers ...string) *http.Request {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	return r
}

func prefix(p string) resource.RouteMatch {
	return resource.RouteMatch{PathKind: resource.PathPrefix, Path: p, CaseSensitive: true}
}

func exact(v string) resource.StringMatcher {
	return resource.StringMatcher{Kind: resource.MatchExact, Value: v}
}

func TestMatchesPath(t *testing.T) {
	tests := []struct {
		name   string
		m      resource.RouteMatch
		target string
		want   bool
	}{
		{"prefix", prefix("/reviews"), "/reviews/1", true},
		{"prefix is not a segment match", prefix("/reviews"), "/reviewsX", true},
		{"prefix miss", prefix("/reviews"), "/ratings", false},
		{"prefix ignores query", prefix("/a?x"), "/a?x=1", false},
		{"empty prefix", prefix(""), "/anything", true},
		{"slash prefix", prefix("/"), "/", true},
		{"prefix case", prefix("/Reviews"), "/reviews", false},
		{"prefix ignore case", resource.RouteMatch{PathKind: resource.PathPrefix, Path: "/Reviews"}, "/REVIEWS/1", true},
		{"exact", resource.RouteMatch{PathKind: resource.PathExact, Path: "/a", CaseSensitive: true}, "/a?q=1", true},
		{"exact miss", resource.RouteMatch{PathKind: resource.PathExact, Path: "/a", CaseSensitive: true}, "/a/", false},
		{"exact case", resource.RouteMatch{PathKind: resource.PathExact, Path: "/a", CaseSensitive: true}, "/A", false},
		{"exact ignore case", resource.RouteMatch{PathKind: resource.PathExact, Path: "/a"}, "/A", true},
		{"regex", resource.RouteMatch{PathKind: resource.PathRegex, Regex: regexp.MustCompile(`^/v[0-9]+/.*$`)}, "/v12/x?y", true},
		{"regex whole path", resource.RouteMatch{PathKind: resource.PathRegex, Regex: regexp.MustCompile(`^/v[0-9]+$`)}, "/v1/x", false},
		{"regex sees no query", resource.RouteMatch{PathKind: resource.PathRegex, Regex: regexp.MustCompile(`^.*q.*$`)}, "/a?q", false},
		{"regex nil", resource.RouteMatch{PathKind: resource.PathRegex}, "/a", false},
		{"separated exact", resource.RouteMatch{PathKind: resource.PathSeparated, Path: "/api", CaseSensitive: true}, "/api", true},
		{"separated slash", resource.RouteMatch{PathKind: resource.PathSeparated, Path: "/api", CaseSensitive: true}, "/api/x", true},
		{"separated query", resource.RouteMatch{PathKind: resource.PathSeparated, Path: "/api", CaseSensitive: true}, "/api?x", true},
		{"separated not segment", resource.RouteMatch{PathKind: resource.PathSeparated, Path: "/api", CaseSensitive: true}, "/apix", false},
		{"separated ignore case", resource.RouteMatch{PathKind: resource.PathSeparated, Path: "/api"}, "/API/x", true},
		{"escaped path as sent", prefix("/a%20b"), "/a%20b/c", true},
		{"escaped path not decoded", prefix("/a b"), "/a%20b", false},
		{"encoded slash kept", prefix("/a%2Fb"), "/a%2Fb", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Matches(&tt.m, req(t, "GET", tt.target)); got != tt.want {
				t.Errorf("Matches(%q) = %v, want %v", tt.target, got, tt.want)
			}
		})
	}
}

func TestMatchesHeaders(t *testing.T) {
	hm := func(name string, sm resource.StringMatcher) resource.HeaderMatcher {
		return resource.HeaderMatcher{Name: name, Value: sm}
	}
	tests := []struct {
		name string
		h    resource.HeaderMatcher
		r    *http.Request
		want bool
	}{
		{"method", hm(":method", exact("GET")), req(t, "GET", "/"), true},
		{"method miss", hm(":method", exact("GET")), req(t, "POST", "/"), false},
		{"authority", hm(":authority", exact("reviews:9080")), req(t, "GET", "http://reviews:9080/"), true},
		{"authority prefix", hm(":authority", resource.StringMatcher{Kind: resource.MatchPrefix, Value: "reviews"}), req(t, "GET", "http://reviews:9080/"), true},
		{"path has query", hm(":path", exact("/a?b=1")), req(t, "GET", "/a?b=1"), true},
		{"path without query", hm(":path", exact("/a")), req(t, "GET", "/a"), true},
		{"scheme http", hm(":scheme", exact("http")), req(t, "GET", "/"), true},
		{"scheme https", hm(":scheme", exact("https")), func() *http.Request {
			r := req(t, "GET", "/")
			r.TLS = &tls.ConnectionState{}
			return r
		}(), true},
		{"lower-case name", hm("end-user", exact("jason")), req(t, "GET", "/", "End-User", "jason"), true},
		{"non-canonical key in map", hm("x-odd", exact("1")), func() *http.Request {
			r := req(t, "GET", "/")
			r.Header["x-ODD"] = []string{"1"}
			return r
		}(), true},
		{"values joined", hm("x-a", exact("1,2")), req(t, "GET", "/", "X-A", "1", "X-A", "2"), true},
		{"missing", hm("end-user", exact("jason")), req(t, "GET", "/"), false},
		{"missing inverted", resource.HeaderMatcher{Name: "end-user", Value: exact("jason"), Invert: true}, req(t, "GET", "/"), true},
		{"missing as empty matches empty", resource.HeaderMatcher{Name: "x-e", Value: exact(""), TreatMissingAsEmpty: true}, req(t, "GET", "/"), true},
		{"missing as empty, inverted prefix", resource.HeaderMatcher{Name: "x-e", Value: resource.StringMatcher{Kind: resource.MatchPrefix, Value: "a"}, Invert: true, TreatMissingAsEmpty: true}, req(t, "GET", "/"), true},
		{"missing as empty, exact value", resource.HeaderMatcher{Name: "x-e", Value: exact("a"), TreatMissingAsEmpty: true}, req(t, "GET", "/"), false},
		{"inverted hit", resource.HeaderMatcher{Name: "end-user", Value: exact("jason"), Invert: true}, req(t, "GET", "/", "end-user", "jason"), false},
		{"inverted miss", resource.HeaderMatcher{Name: "end-user", Value: exact("jason"), Invert: true}, req(t, "GET", "/", "end-user", "bob"), true},
		{"present", resource.HeaderMatcher{Name: "x-p", Present: true}, req(t, "GET", "/", "x-p", ""), true},
		{"present missing", resource.HeaderMatcher{Name: "x-p", Present: true}, req(t, "GET", "/"), false},
		{"present inverted", resource.HeaderMatcher{Name: "x-p", Present: true, Invert: true}, req(t, "GET", "/"), true},
		{"present inverted hit", resource.HeaderMatcher{Name: "x-p", Present: true, Invert: true}, req(t, "GET", "/", "x-p", "1"), false},
		{"exact case", hm("x", exact("Abc")), req(t, "GET", "/", "x", "abc"), false},
		{"exact ignore case", hm("x", resource.StringMatcher{Value: "Abc", IgnoreCase: true}), req(t, "GET", "/", "x", "aBC"), true},
		{"prefix", hm("x", resource.StringMatcher{Kind: resource.MatchPrefix, Value: "ab"}), req(t, "GET", "/", "x", "abc"), true},
		{"prefix ignore case", hm("x", resource.StringMatcher{Kind: resource.MatchPrefix, Value: "AB", IgnoreCase: true}), req(t, "GET", "/", "x", "abc"), true},
		{"suffix", hm("x", resource.StringMatcher{Kind: resource.MatchSuffix, Value: "bc"}), req(t, "GET", "/", "x", "abc"), true},
		{"suffix miss", hm("x", resource.StringMatcher{Kind: resource.MatchSuffix, Value: "ab"}), req(t, "GET", "/", "x", "abc"), false},
		{"suffix ignore case", hm("x", resource.StringMatcher{Kind: resource.MatchSuffix, Value: "BC", IgnoreCase: true}), req(t, "GET", "/", "x", "abc"), true},
		{"contains", hm("x", resource.StringMatcher{Kind: resource.MatchContains, Value: "b"}), req(t, "GET", "/", "x", "abc"), true},
		{"contains ignore case", hm("x", resource.StringMatcher{Kind: resource.MatchContains, Value: "B", IgnoreCase: true}), req(t, "GET", "/", "x", "abc"), true},
		{"contains miss", hm("x", resource.StringMatcher{Kind: resource.MatchContains, Value: "z"}), req(t, "GET", "/", "x", "abc"), false},
		{"regex", hm("x", resource.StringMatcher{Kind: resource.MatchRegex, Regex: regexp.MustCompile(`^a.c$`)}), req(t, "GET", "/", "x", "abc"), true},
		{"regex whole value", hm("x", resource.StringMatcher{Kind: resource.MatchRegex, Regex: regexp.MustCompile(`^b$`)}), req(t, "GET", "/", "x", "abc"), false},
		{"empty exact on empty value", hm("x", exact("")), req(t, "GET", "/", "x", ""), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := resource.RouteMatch{Headers: []resource.HeaderMatcher{tt.h}}
			if got := Matches(&m, tt.r); got != tt.want {
				t.Errorf("Matches = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMatchesAllHeadersAndParams(t *testing.T) {
	m := resource.RouteMatch{
		Headers: []resource.HeaderMatcher{
			{Name: ":method", Value: exact("GET")},
			{Name: "end-user", Value: exact("jason")},
		},
		QueryParams: []resource.QueryParamMatcher{{Name: "v", Value: exact("2")}},
	}
	if !Matches(&m, req(t, "GET", "/?v=2", "end-user", "jason")) {
		t.Error("all matchers satisfied, but no match")
	}
	for _, r := range []*http.Request{
		req(t, "POST", "/?v=2", "end-user", "jason"),
		req(t, "GET", "/?v=2"),
		req(t, "GET", "/?v=3", "end-user", "jason"),
	} {
		if Matches(&m, r) {
			t.Errorf("%s %s %v matched; every matcher must hold", r.Method, r.URL, r.Header)
		}
	}
}

func TestMatchesQuery(t *testing.T) {
	tests := []struct {
		name  string
		q     resource.QueryParamMatcher
		query string
		want  bool
	}{
		{"exact", resource.QueryParamMatcher{Name: "a", Value: exact("1")}, "a=1", true},
		{"first value", resource.QueryParamMatcher{Name: "a", Value: exact("1")}, "a=1&a=2", true},
		{"first value only", resource.QueryParamMatcher{Name: "a", Value: exact("2")}, "a=1&a=2", false},
		{"missing", resource.QueryParamMatcher{Name: "a", Value: exact("1")}, "b=1", false},
		{"present", resource.QueryParamMatcher{Name: "a", Present: true}, "x=0&a=", true},
		{"present no equals", resource.QueryParamMatcher{Name: "debug", Present: true}, "debug", true},
		{"present missing", resource.QueryParamMatcher{Name: "a", Present: true}, "ab=1", false},
		{"decoded", resource.QueryParamMatcher{Name: "a b", Value: exact("x/y")}, "a%20b=x%2Fy", true},
		{"plus is not space", resource.QueryParamMatcher{Name: "a", Value: exact("x+y")}, "a=x+y", true},
		{"regex", resource.QueryParamMatcher{Name: "id", Value: resource.StringMatcher{Kind: resource.MatchRegex, Regex: regexp.MustCompile(`^[0-9]+$`)}}, "id=42", true},
		{"prefix", resource.QueryParamMatcher{Name: "id", Value: resource.StringMatcher{Kind: resource.MatchPrefix, Value: "4"}}, "id=42", true},
		{"empty query", resource.QueryParamMatcher{Name: "a", Present: true}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := resource.RouteMatch{QueryParams: []resource.QueryParamMatcher{tt.q}}
			if got := Matches(&m, req(t, "GET", "/p?"+tt.query)); got != tt.want {
				t.Errorf("Matches(?%s) = %v, want %v", tt.query, got, tt.want)
			}
		})
	}
}

func FuzzMatches(f *testing.F) {
	f.Add("/reviews/1", "a=1&b=%zz", "jason", "Reviews:9080", "/Rev")
	f.Add("", "", "", "", "")
	f.Add("/%", "%", "\xff", "[::1]:80", "/api")
	f.Fuzz(func(t *testing.T, path, query, user, host, pfx string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.URL.Path, r.URL.RawQuery, r.Host = path, query, host
		r.URL.RawPath = path
		r.Header["End-User"] = []string{user, pfx}
		ms := []resource.RouteMatch{
			{PathKind: resource.PathPrefix, Path: pfx},
			{PathKind: resource.PathExact, Path: pfx, CaseSensitive: true},
			{PathKind: resource.PathSeparated, Path: pfx},
			{PathKind: resource.PathRegex, Regex: regexp.MustCompile(`^/r.*$`)},
			{Headers: []resource.HeaderMatcher{
				{Name: "end-user", Value: resource.StringMatcher{Kind: resource.MatchSuffix, Value: pfx, IgnoreCase: true}},
				{Name: ":path", Value: resource.StringMatcher{Kind: resource.MatchContains, Value: user, IgnoreCase: true}, Invert: true},
			}},
			{QueryParams: []resource.QueryParamMatcher{{Name: user, Present: true}, {Name: "a", Value: exact(pfx)}}},
		}
		for i := range ms {
			got := Matches(&ms[i], r)
			if why := whyNot(&ms[i], r); (why == "") != got {
				t.Fatalf("Matches = %v but whyNot = %q", got, why)
			}
		}
	})
}
