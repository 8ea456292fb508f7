package route

import (
	"net/http/httptest"
	"testing"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

func domainsConfig() *resource.RouteConfig {
	return &resource.RouteConfig{Name: "9080", VirtualHosts: []resource.VirtualHost{
		{Name: "any", Domains: []string{"*"}},
		{Name: "reviews", Domains: []string{"reviews.default.svc.cluster.local", "reviews", "reviews:9080", "10.0.0.1:9080"}},
		{Name: "foo-suffix", Domains: []string{"*.foo.com"}},
		{Name: "long-suffix", Domains: []string{"*.bar.foo.com"}},
		{Name: "dash-suffix", Domains: []string{"*-bar.com"}},
		{Name: "prefix", Domains: []string{"api.*"}},
		{Name: "long-prefix", Domains: []string{"api.v2.*"}},
		{Name: "exact-foo", Domains: []string{"www.foo.com"}},
		{Name: "upper", Domains: []string{"Ratings.Default"}},
	}}
}

func TestSelectVirtualHost(t *testing.T) {
	rc := domainsConfig()
	tests := []struct {
		host, want string
	}{
		{"reviews", "reviews"},
		{"REVIEWS", "reviews"},
		{"reviews:9080", "reviews"},
		{"reviews.default.svc.cluster.local", "reviews"},
		{"10.0.0.1:9080", "reviews"},
		{"10.0.0.1", "any"},          // the port is part of the domain; nothing is added
		{"reviews:9081", "any"},      // and nothing is stripped
		{"www.foo.com", "exact-foo"}, // exact beats every wildcard
		{"a.foo.com", "foo-suffix"},
		{"A.FOO.COM", "foo-suffix"},
		{"x.bar.foo.com", "long-suffix"}, // longest suffix wins
		{".bar.foo.com", "foo-suffix"},   // "*.bar.foo.com" needs a non-empty remainder
		{".foo.com", "any"},
		{"foo.com", "any"},
		{"x-bar.com", "dash-suffix"},
		{"-bar.com", "any"},
		{"api.example", "prefix"},
		{"api.v2.example", "long-prefix"}, // longest prefix wins
		{"api.", "any"},
		{"api.foo.com", "foo-suffix"}, // suffix beats prefix
		{"ratings.default", "upper"},  // domains compare case-insensitively too
		{"", "any"},
	}
	tbl := Compile(rc)
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			if got := name(SelectVirtualHost(rc, tt.host)); got != tt.want {
				t.Errorf("SelectVirtualHost(%q) = %q, want %q", tt.host, got, tt.want)
			}
			if got := name(tbl.SelectVirtualHost(tt.host)); got != tt.want {
				t.Errorf("Table.SelectVirtualHost(%q) = %q, want %q", tt.host, got, tt.want)
			}
		})
	}
}

func TestSelectVirtualHostNoMatch(t *testing.T) {
	rc := &resource.RouteConfig{Name: "80", VirtualHosts: []resource.VirtualHost{
		{Name: "a", Domains: []string{"a.example", "a.example:80"}},
	}}
	for _, host := range []string{"b.example", "a.example:81", "a.exampl"} {
		if vh := SelectVirtualHost(rc, host); vh != nil {
			t.Errorf("SelectVirtualHost(%q) = %q, want nil", host, vh.Name)
		}
		if vh := Compile(rc).SelectVirtualHost(host); vh != nil {
			t.Errorf("Table.SelectVirtualHost(%q) = %q, want nil", host, vh.Name)
		}
	}
	if SelectVirtualHost(nil, "x") != nil || Compile(nil).SelectVirtualHost("x") != nil {
		t.Error("nil route config selected a virtual host")
	}
}

func TestSelectFirstDuplicateWins(t *testing.T) {
	rc := &resource.RouteConfig{VirtualHosts: []resource.VirtualHost{
		{Name: "first", Domains: []string{"*", "*.a.com", "x.*", "h"}},
		{Name: "second", Domains: []string{"*", "*.b.com", "y.*", "H"}},
	}}
	for _, host := range []string{"zzz", "h", "q.a.com", "x.q"} {
		if got := name(SelectVirtualHost(rc, host)); got != "first" {
			t.Errorf("SelectVirtualHost(%q) = %q, want first", host, got)
		}
		if got := name(Compile(rc).SelectVirtualHost(host)); got != "first" {
			t.Errorf("Table.SelectVirtualHost(%q) = %q, want first", host, got)
		}
	}
}

func TestSelect(t *testing.T) {
	rc := &resource.RouteConfig{Name: "9080", VirtualHosts: []resource.VirtualHost{{
		Name:    "reviews:9080",
		Domains: []string{"reviews", "reviews:9080"},
		Routes: []resource.Route{
			{Name: "v2", Match: resource.RouteMatch{PathKind: resource.PathPrefix, Path: "/v2", CaseSensitive: true}},
			{Name: "default", Match: resource.RouteMatch{PathKind: resource.PathPrefix, Path: "/", CaseSensitive: true}},
		},
	}}}
	tests := []struct{ url, vh, route string }{
		{"http://reviews:9080/v2/x", "reviews:9080", "v2"},
		{"http://reviews/other", "reviews:9080", "default"},
		{"http://ratings/v2", "", ""},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", tt.url, nil)
		vh, rt := Select(rc, r)
		if name(vh) != tt.vh || routeName(rt) != tt.route {
			t.Errorf("Select(%s) = %q, %q; want %q, %q", tt.url, name(vh), routeName(rt), tt.vh, tt.route)
		}
		vh, rt = Compile(rc).Select(r)
		if name(vh) != tt.vh || routeName(rt) != tt.route {
			t.Errorf("Table.Select(%s) = %q, %q; want %q, %q", tt.url, name(vh), routeName(rt), tt.vh, tt.route)
		}
	}
	// A virtual host whose routes all miss: vh set, route nil.
	rc.VirtualHosts[0].Routes = rc.VirtualHosts[0].Routes[:1]
	vh, rt := Select(rc, httptest.NewRequest("GET", "http://reviews/v1", nil))
	if vh == nil || rt != nil {
		t.Errorf("Select = %v, %v; want the virtual host and no route", vh, rt)
	}
}

func TestSelectAllocationFree(t *testing.T) {
	rc := benchConfig()
	tbl := Compile(rc)
	r := httptest.NewRequest("GET", "http://svc-40.default.svc.cluster.local:8080/api/v1/items?id=3", nil)
	r.Header.Set("end-user", "jason")
	for name, f := range map[string]func(){
		"Select":       func() { Select(rc, r) },
		"Table.Select": func() { tbl.Select(r) },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s allocates %v times per request, want 0", name, n)
		}
	}
	if _, rt := tbl.Select(r); rt == nil || rt.Name != "items" {
		t.Fatalf("benchmark request selects %v, want route items", rt)
	}
}

func name(vh *resource.VirtualHost) string {
	if vh == nil {
		return ""
	}
	return vh.Name
}

func routeName(rt *resource.Route) string {
	if rt == nil {
		return ""
	}
	return rt.Name
}
