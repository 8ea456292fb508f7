package authz

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/netip"
	"net/url"
	"testing"

	"github.com/lucid-mesh/lucid/internal/dataplane/authz"
	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/route"
)

// discard is a ResponseWriter that keeps nothing but the status.
type discard struct {
	h    http.Header
	code int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(code int)        { d.code = code }

// BenchmarkForwardAuthorization is what authorization adds to the sidecar's request path,
// in forward.Serve itself (no sockets, no upstream: the inbound route answers directly):
// path normalisation, the chain built by the proxy from the decoded configuration, the
// peer's identity from its certificate, routing and the reply, with no policy and with 50
// AuthorizationPolicies (100 rules; the request is allowed by the last ALLOW policy), in
// the same run. The difference between the two is the added cost per request.
func BenchmarkForwardAuthorization(b *testing.B) {
	keys := newKeys(b)
	rc := &resource.RouteConfig{Name: "inbound|8000||", VirtualHosts: []resource.VirtualHost{{Name: "inbound|http|8000", Domains: []string{"*"},
		Routes: []resource.Route{{Name: "default", Match: resource.RouteMatch{PathKind: resource.PathPrefix, Path: "/", CaseSensitive: true},
			DirectResponse: &resource.DirectResponse{Status: http.StatusOK}}}}}}
	peer := &x509.Certificate{URIs: []*url.URL{{Scheme: "spiffe", Host: "cluster.local", Path: "/ns/ns-39/sa/client-39"}}}
	for _, bc := range []struct {
		name, config string
	}{{"none", ""}, {"50policies-100rules", benchPolicies()}} {
		b.Run(bc.name, func(b *testing.B) {
			inbound := decodedInbound(b, suite{Name: bc.name, Config: bc.config}, keys)
			var hcm *resource.HTTPManager
			for _, fc := range inbound.FilterChains {
				if fc.Match.DestinationPort == 8000 {
					hcm = fc.HTTP
				}
			}
			chain, err := authz.New(hcm.Auth, authz.Options{})
			if err != nil {
				b.Fatal(err)
			}
			fwd := forward.New(forward.Options{})
			in := forward.Inbound{Routes: route.Compile(rc), RouteConfigName: rc.Name, HTTP: hcm, Authz: chain,
				Listener: "virtualInbound", Direction: "inbound",
				LocalAddr: netip.MustParseAddrPort(workloadAddr + ":8000"), RemoteAddr: netip.MustParseAddrPort("10.0.0.1:40000")}
			req := &http.Request{
				Method: http.MethodGet, URL: &url.URL{Path: "/api/39/items"}, RequestURI: "/api/39/items", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
				Host: defaultHost, Header: http.Header{"User-Agent": {"bench"}, "Accept": {"*/*"}, "X-Request-Id": {"bench"}},
				TLS: &tls.ConnectionState{HandshakeComplete: true, PeerCertificates: []*x509.Certificate{peer}},
			}
			w := &discard{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				fwd.Serve(w, req, in)
				if w.code != http.StatusOK {
					b.Fatalf("status %d: %s", w.code, w.h.Get("X-Lucid-Error"))
				}
			}
		})
	}
}
