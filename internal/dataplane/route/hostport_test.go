package route

import (
	"net/http/httptest"
	"testing"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

func TestStripPort(t *testing.T) {
	for in, want := range map[string]string{
		"blog.example.com:8080": "blog.example.com",
		"blog.example.com":      "blog.example.com",
		"blog.example.com:":     "blog.example.com",
		"a.com:x":               "a.com",
		"[::1]:8080":            "[::1]",
		"[::1]":                 "[::1]",
		"10.0.0.1:80":           "10.0.0.1",
		"":                      "",
	} {
		if got := StripPort(in); got != want {
			t.Errorf("StripPort(%q) = %q, want %q", in, got, want)
		}
	}
}

// A gateway's route configuration (Istio sets ignore_port_in_host_matching there): a Host
// with a port matches a wildcard domain and an exact one as it would without the port;
// without the setting the port is part of the host and only "*" matches.
func TestIgnorePortInHostMatching(t *testing.T) {
	rc := &resource.RouteConfig{Name: "http.8080", VirtualHosts: []resource.VirtualHost{
		{Name: "*.example.com:8080", Domains: []string{"*.example.com"}},
		{Name: "shop.example.com:8080", Domains: []string{"shop.example.com"}},
		{Name: "api.*:8080", Domains: []string{"api.*"}},
	}}
	cases := []struct{ host, ignoring, asWritten string }{
		{"blog.example.com:8080", "*.example.com:8080", ""},
		{"blog.example.com", "*.example.com:8080", "*.example.com:8080"},
		{"SHOP.example.com:443", "shop.example.com:8080", ""},
		{"api.internal:9", "api.*:8080", "api.*:8080"}, // "api.*" matches the port as written too
		{"other.org:8080", "", ""},
	}
	for _, ignore := range []bool{true, false} {
		rc.IgnorePortInHostMatching = ignore
		tbl := Compile(rc)
		for _, tc := range cases {
			want := tc.asWritten
			if ignore {
				want = tc.ignoring
			}
			r := httptest.NewRequest("GET", "http://x/", nil)
			r.Host = tc.host
			vh, _ := tbl.Select(r)
			if name(vh) != want {
				t.Errorf("ignore=%v host %q: table chose %q, want %q", ignore, tc.host, name(vh), want)
			}
			if vh := SelectVirtualHost(rc, tc.host); name(vh) != want {
				t.Errorf("ignore=%v host %q: scan chose %q, want %q", ignore, tc.host, name(vh), want)
			}
		}
	}
}
