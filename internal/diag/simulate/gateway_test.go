package simulate

import (
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

func TestClientConn(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want Conn
	}{
		{"http://web.example.com:8080/", Conn{}},
		{"https://Web.Example.com:8443/x", Conn{TLS: true, ServerName: "web.example.com", ALPN: CurlALPN}},
		{"https://127.0.0.1:8443/", Conn{TLS: true, ALPN: CurlALPN}}, // curl sends no SNI for an IP
		{"https://[::1]:8443/", Conn{TLS: true, ALPN: CurlALPN}},     // nor for IPv6
		{"https://api.example.com/", Conn{TLS: true, ServerName: "api.example.com", ALPN: CurlALPN}},
	} {
		r, err := http.NewRequest(http.MethodGet, tc.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := ClientConn(r)
		if got.TLS != tc.want.TLS || got.ServerName != tc.want.ServerName || !slices.Equal(got.ALPN, tc.want.ALPN) {
			t.Errorf("%s: got %+v, want %+v", tc.url, got, tc.want)
		}
	}
}

// gatewaySnap is a router's configuration: 0.0.0.0_8443 with a wildcard-SNI TLS chain and a
// passthrough chain, 0.0.0.0_8080 plaintext with a require_tls virtual host.
func gatewaySnap() *resource.Snapshot {
	vh := func(name string, req resource.TLSRequirement) resource.VirtualHost {
		return resource.VirtualHost{Name: name, Domains: []string{"*"}, RequireTLS: req, Routes: []resource.Route{{Name: "all",
			Match:          resource.RouteMatch{PathKind: resource.PathPrefix, Path: "/", CaseSensitive: true},
			DirectResponse: &resource.DirectResponse{Status: 200}}}}
	}
	return &resource.Snapshot{
		Listeners: map[string]*resource.Listener{
			"0.0.0.0_8443": {Name: "0.0.0.0_8443", Address: netip.MustParseAddrPort("0.0.0.0:8443"), BindToPort: true, TLSInspector: true,
				FilterChains: []resource.FilterChain{
					{Name: "https", Match: resource.FilterChainMatch{ServerNames: []string{"*.example.com"}},
						TLS:  &resource.DownstreamTLS{ALPN: []string{"h2", "http/1.1"}},
						HTTP: &resource.HTTPManager{RDSName: "https.8443"}},
					{Match: resource.FilterChainMatch{ServerNames: []string{"db.example.com"}, TransportProtocol: "tls"},
						TCP: &resource.TCPProxy{StatPrefix: "db", Cluster: "outbound|5432||db.example.com"}},
				}},
			"0.0.0.0_8080": {Name: "0.0.0.0_8080", Address: netip.MustParseAddrPort("0.0.0.0:8080"), BindToPort: true,
				FilterChains: []resource.FilterChain{{HTTP: &resource.HTTPManager{RDSName: "http.8080"}}}},
		},
		Routes: map[string]*resource.RouteConfig{
			"https.8443": {Name: "https.8443", VirtualHosts: []resource.VirtualHost{vh("*.example.com:8443", resource.RequireTLSNone)}},
			"http.8080":  {Name: "http.8080", VirtualHosts: []resource.VirtualHost{vh("secure:8080", resource.RequireTLSAll)}},
		},
		Clusters:  map[string]*resource.Cluster{},
		Endpoints: map[string]*resource.Endpoints{},
	}
}

// TestWhyGateway: the chain is the proxy's pick for the connection (exact SNI before a
// wildcard), plaintext to a require_tls virtual host is a 301 to https, a TCP chain with a
// missing cluster closes the connection with NC, and the failures before HTTP close it.
func TestWhyGateway(t *testing.T) {
	e := New(gatewaySnap(), nil)
	if !e.IsRouter() {
		t.Fatal("IsRouter = false for a router's listeners")
	}
	for _, tc := range []struct {
		url, sni           string
		chain, route       string
		status             int
		closed, flag, note string
	}{
		{url: "https://a.example.com:8443/", chain: "https (matches SNI *.example.com)", status: 200},
		{url: "https://db.example.com:8443/", chain: "#2 (matches SNI db.example.com, transport tls)", flag: "NC", closed: "no upstream"},
		{url: "https://other.org:8443/", closed: "filter_chain_not_found"},
		{url: "http://a.example.com:8443/", closed: "filter_chain_not_found"},
		{url: "http://secure:8080/p?q=1", chain: "#1 (matches every connection)", route: "(require_tls)", status: 301, note: "redirect to https://secure:8080/p?q=1 "},
		{url: "https://secure:8080/", chain: "#1 (matches every connection)", closed: "400 Bad Request"},
		{url: "http://secure:9999/", closed: "connection refused"},
	} {
		r, _ := http.NewRequest(http.MethodGet, tc.url, nil)
		tr := e.WhyGateway(r, ClientConn(r))
		o := tr.Outcome
		if tr.FilterChain != tc.chain || o.Status != tc.status || o.Flag != tc.flag ||
			!strings.Contains(o.Closed, tc.closed) || (tc.closed == "") != (o.Closed == "") || !strings.Contains(o.Note, tc.note) ||
			(tc.route != "" && tr.Route != tc.route) {
			t.Errorf("%s: chain %q route %q outcome %+v\nwant chain %q route %q status %d flag %q closed %q note %q",
				tc.url, tr.FilterChain, tr.Route, o, tc.chain, tc.route, tc.status, tc.flag, tc.closed, tc.note)
		}
	}
}
