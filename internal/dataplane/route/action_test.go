package route

import (
	"math/rand/v2"
	"net/http"
	"reflect"
	"regexp"
	"testing"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

func TestPickClusterDistribution(t *testing.T) {
	a := &resource.RouteAction{WeightedClusters: []resource.WeightedCluster{
		{Name: "outbound|9080|v1|reviews", Weight: 80},
		{Name: "outbound|9080|v0|reviews", Weight: 0},
		{Name: "outbound|9080|v2|reviews", Weight: 20},
	}}
	rng := rand.New(rand.NewPCG(1, 2))
	counts := map[string]int{}
	const n = 100_000
	for range n {
		name, wc := PickCluster(a, rng.Uint64N)
		if wc == nil || wc.Name != name {
			t.Fatalf("PickCluster = %q, %v; want the chosen entry", name, wc)
		}
		counts[name]++
	}
	if counts["outbound|9080|v0|reviews"] != 0 {
		t.Errorf("zero-weight cluster chosen %d times", counts["outbound|9080|v0|reviews"])
	}
	for name, want := range map[string]float64{"outbound|9080|v1|reviews": 0.8, "outbound|9080|v2|reviews": 0.2} {
		if got := float64(counts[name]) / n; got < want-0.02 || got > want+0.02 {
			t.Errorf("%s chosen %.3f of the time, want %.2f ± 0.02", name, got, want)
		}
	}
}

func TestPickClusterEdges(t *testing.T) {
	top := func(n uint64) uint64 { return n - 1 }
	zero := func(uint64) uint64 { return 0 }
	if name, wc := PickCluster(&resource.RouteAction{Cluster: "c"}, zero); name != "c" || wc != nil {
		t.Errorf("plain cluster: %q, %v", name, wc)
	}
	ws := &resource.RouteAction{WeightedClusters: []resource.WeightedCluster{{Name: "a", Weight: 0}, {Name: "b", Weight: 3}, {Name: "c", Weight: 0}}}
	for _, rnd := range []func(uint64) uint64{zero, top} {
		if name, _ := PickCluster(ws, rnd); name != "b" {
			t.Errorf("only b has weight, got %q", name)
		}
	}
	allZero := &resource.RouteAction{WeightedClusters: []resource.WeightedCluster{{Name: "a"}}}
	if name, wc := PickCluster(allZero, zero); name != "" || wc != nil {
		t.Errorf("all weights zero: %q, %v; want none", name, wc)
	}
	if name, _ := PickCluster(nil, zero); name != "" {
		t.Errorf("nil action: %q", name)
	}
}

func TestRewritePath(t *testing.T) {
	sep := resource.RouteMatch{PathKind: resource.PathSeparated, Path: "/api", CaseSensitive: true}
	ex := resource.RouteMatch{PathKind: resource.PathExact, Path: "/old", CaseSensitive: true}
	re := resource.RouteMatch{PathKind: resource.PathRegex, Regex: regexp.MustCompile(`^/v[0-9]/.*$`)}
	tests := []struct {
		name string
		m    resource.RouteMatch
		a    resource.RouteAction
		in   string
		want string
	}{
		{"none", prefix("/a"), resource.RouteAction{}, "/a/b?x=1", "/a/b?x=1"},
		{"prefix", prefix("/reviews"), resource.RouteAction{PrefixRewrite: "/"}, "/reviews/1?x=1", "//1?x=1"},
		{"prefix to prefix", prefix("/reviews/"), resource.RouteAction{PrefixRewrite: "/"}, "/reviews/1?x=1", "/1?x=1"},
		{"prefix ignore case keeps tail", resource.RouteMatch{PathKind: resource.PathPrefix, Path: "/Old"}, resource.RouteAction{PrefixRewrite: "/new"}, "/OLD/x", "/new/x"},
		{"empty prefix", prefix(""), resource.RouteAction{PrefixRewrite: "/base"}, "/x", "/base/x"},
		{"separated", sep, resource.RouteAction{PrefixRewrite: "/v2"}, "/api/items", "/v2/items"},
		{"exact replaces path", ex, resource.RouteAction{PrefixRewrite: "/new"}, "/old?q", "/new?q"},
		{"regex route replaces path", re, resource.RouteAction{PrefixRewrite: "/fixed"}, "/v1/a/b", "/fixed"},
		{"regex rewrite", prefix("/"), resource.RouteAction{RegexRewrite: &resource.RegexRewrite{
			Pattern: regexp.MustCompile(`^/service/([^/]+)(/.*)$`), Substitution: `\2/instance/\1`}}, "/service/foo/v1/api?x=/service/a/b", "/v1/api/instance/foo?x=/service/a/b"},
		{"regex rewrite all", prefix("/"), resource.RouteAction{RegexRewrite: &resource.RegexRewrite{
			Pattern: regexp.MustCompile(`o`), Substitution: `0`}}, "/foo/boo", "/f00/b00"},
		{"regex rewrite literal dollar and backslash", prefix("/"), resource.RouteAction{RegexRewrite: &resource.RegexRewrite{
			Pattern: regexp.MustCompile(`^/a$`), Substitution: `/$1\\x`}}, "/a", `/$1\x`},
		{"whole match group", prefix("/"), resource.RouteAction{RegexRewrite: &resource.RegexRewrite{
			Pattern: regexp.MustCompile(`^/x`), Substitution: `/y\0`}}, "/x/z", "/y/x/z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RewritePath(&tt.m, &tt.a, tt.in); got != tt.want {
				t.Errorf("RewritePath(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	if got := RewritePath(nil, nil, "/x"); got != "/x" {
		t.Errorf("nil action rewrote to %q", got)
	}
}

func TestRedirectLocation(t *testing.T) {
	tests := []struct {
		name   string
		m      resource.RouteMatch
		rd     resource.Redirect
		target string
		scheme string
		want   string
	}{
		{"host", prefix("/"), resource.Redirect{Host: "new.example"}, "http://old:8080/a?b=1", "http", "http://new.example/a?b=1"},
		{"path keeps query", prefix("/"), resource.Redirect{Path: "/new"}, "http://h/old?b=1", "http", "http://h/new?b=1"},
		{"path with query wins", prefix("/"), resource.Redirect{Path: "/new?c=2", StripQuery: true}, "http://h/old?b=1", "http", "http://h/new?c=2"},
		{"strip query", prefix("/"), resource.Redirect{Path: "/new", StripQuery: true}, "http://h/old?b=1", "http", "http://h/new"},
		{"prefix rewrite", prefix("/old"), resource.Redirect{PrefixRewrite: "/new"}, "http://h/old/x?q", "http", "http://h/new/x?q"},
		{"https keeps custom port", prefix("/"), resource.Redirect{Scheme: "https"}, "http://h:8080/x", "http", "https://h:8080/x"},
		{"https drops :80", prefix("/"), resource.Redirect{Scheme: "https"}, "http://h:80/x", "http", "https://h/x"},
		{"http drops :443", prefix("/"), resource.Redirect{Scheme: "http"}, "http://h:443/x", "https", "http://h/x"},
		{"same scheme keeps :80", prefix("/"), resource.Redirect{Path: "/y"}, "http://h:80/x", "http", "http://h:80/y"},
		{"port", prefix("/"), resource.Redirect{Port: 9443, Scheme: "https"}, "http://h:8080/x", "http", "https://h:9443/x"},
		{"port ipv6", prefix("/"), resource.Redirect{Port: 81}, "http://[::1]:80/x", "http", "http://[::1]:81/x"},
		{"host and port", prefix("/"), resource.Redirect{Host: "n", Port: 81}, "http://h:80/x", "http", "http://n:81/x"},
		{"path without slash", prefix("/"), resource.Redirect{Path: "rel"}, "http://h/x", "http", "http://h/rel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := req(t, "GET", tt.target)
			if got := RedirectLocation(&tt.m, &tt.rd, r, tt.scheme); got != tt.want {
				t.Errorf("RedirectLocation = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestApplyHeaders(t *testing.T) {
	h := http.Header{"X-Old": {"1"}, "X-Keep": {"k"}, "X-Multi": {"a"}, "X-Set": {"old"}}
	ApplyHeaders(h, []resource.HeaderValueOption{
		{Key: "x-multi", Value: "b", Append: true},
		{Key: "x-set", Value: "new"},
		{Key: "x-new", Value: "%DOWNSTREAM_REMOTE_ADDRESS%"},
		{Key: "x-empty", Value: ""},
		{Key: ":authority", Value: "nope"},
		{Key: "x-old", Value: "again", Append: true},
	}, []string{"x-old", ":path"})
	want := http.Header{
		"X-Keep":  {"k"},
		"X-Multi": {"a", "b"},
		"X-Set":   {"new"},
		"X-New":   {"%DOWNSTREAM_REMOTE_ADDRESS%"},
		"X-Old":   {"again"}, // removed first, then added
	}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("headers = %v, want %v", h, want)
	}
}

func FuzzSelectVirtualHost(f *testing.F) {
	f.Add("reviews:9080", "*.foo.com", "api.*", "reviews")
	f.Add("", "*", "*", "")
	f.Add("A.FOO.COM", "*-x", "x*", "\xff")
	f.Fuzz(func(t *testing.T, host, d1, d2, d3 string) {
		rc := &resource.RouteConfig{VirtualHosts: []resource.VirtualHost{
			{Name: "1", Domains: []string{d1}},
			{Name: "2", Domains: []string{d2, d3}},
			{Name: "3", Domains: []string{"*.example.com", "exact.example.com"}},
		}}
		scan := SelectVirtualHost(rc, host)
		if tbl := Compile(rc).SelectVirtualHost(host); tbl != scan {
			t.Fatalf("host %q: scan chose %q, table chose %q", host, name(scan), name(tbl))
		}
		// Ignoring the port is matching the host without it.
		stripped := SelectVirtualHost(rc, StripPort(host))
		rc.IgnorePortInHostMatching = true
		if scan, tbl := SelectVirtualHost(rc, host), Compile(rc).SelectVirtualHost(host); scan != stripped || tbl != stripped {
			t.Fatalf("host %q ignoring the port: scan chose %q, table chose %q, want %q", host, name(scan), name(tbl), name(stripped))
		}
	})
}
