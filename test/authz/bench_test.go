package authz

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/lucid-mesh/lucid/internal/dataplane/authz"
	"github.com/lucid-mesh/lucid/internal/dataplane/pathnorm"
	"github.com/lucid-mesh/lucid/internal/dataplane/rbac"
)

// benchPolicies is 50 AuthorizationPolicies with 100 rules for httpbin: 40 ALLOW policies
// (a principal with methods and a path prefix; a namespace with a header condition) and
// 10 DENY policies (a path prefix; a header's presence).
func benchPolicies() string {
	var b strings.Builder
	for i := range 40 {
		fmt.Fprintf(&b, `---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-%02d, namespace: foo}
spec:
  selector: {matchLabels: {app: httpbin}}
  rules:
    - from: [{source: {principals: ["cluster.local/ns/ns-%d/sa/client-%d"]}}]
      to: [{operation: {methods: ["GET", "POST"], paths: ["/api/%d/*"]}}]
    - from: [{source: {namespaces: ["ns-%d"]}}]
      when: [{key: "request.headers[x-tenant]", values: ["tenant-%d"]}]
`, i, i, i, i, i, i)
	}
	for i := range 10 {
		fmt.Fprintf(&b, `---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-%02d, namespace: foo}
spec:
  action: DENY
  rules:
    - to: [{operation: {paths: ["/internal/%d/*"]}}]
    - when: [{key: "request.headers[x-block-%d]", values: ["*"]}]
`, i, i, i)
	}
	return b.String()
}

// BenchmarkSidecarAuthorization is the evaluation a sidecar adds per request: path
// normalisation and the inbound chain, with no policy and with 50 policies (100 rules),
// for a request the last ALLOW policy allows (every DENY rule and every ALLOW policy
// before it are evaluated).
func BenchmarkSidecarAuthorization(b *testing.B) {
	keys := newKeys(b)
	for _, bc := range []struct {
		name, config string
	}{{"none", ""}, {"50policies-100rules", benchPolicies()}} {
		b.Run(bc.name, func(b *testing.B) {
			ch := buildChains(b, suite{Name: bc.name, Config: bc.config}, keys, &authzServer{})
			chain := ch.http[8000]
			req := &http.Request{
				Method: http.MethodGet, URL: &url.URL{Path: "/api/39/items"}, RequestURI: "/api/39/items",
				Host: defaultHost, Header: http.Header{"User-Agent": {"bench"}, "Accept": {"*/*"}},
			}
			in := &authz.HTTPInput{
				Conn: authz.Conn{
					Principal: "spiffe://cluster.local/ns/ns-39/sa/client-39",
					Peer:      netip.MustParseAddr("10.0.0.1"),
					Local:     netip.MustParseAddrPort("127.0.181.10:8000"),
				},
				Request: req, Scheme: "http",
			}
			ctx := context.Background()
			opts := pathnorm.ForMode(pathnorm.Base)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				in.Path, _ = pathnorm.Normalize(req.RequestURI, opts)
				in.RemoteIP = rbac.RemoteAddress(in.Conn.Peer, req.Header["X-Forwarded-For"], false, 0)
				if d := chain.CheckHTTP(ctx, in); d.Reply != nil {
					b.Fatalf("denied: %s", d.Reply.Explanation)
				}
			}
		})
	}
}

// BenchmarkDenialExplained is the cost of a denial with its explanation (not on the
// allowed path): a request no ALLOW policy matches, each policy explained.
func BenchmarkDenialExplained(b *testing.B) {
	keys := newKeys(b)
	ch := buildChains(b, suite{Config: benchPolicies()}, keys, &authzServer{})
	chain := ch.http[8000]
	req := &http.Request{Method: http.MethodDelete, URL: &url.URL{Path: "/other"}, RequestURI: "/other", Host: defaultHost, Header: http.Header{}}
	in := &authz.HTTPInput{
		Conn:    authz.Conn{Principal: "spiffe://cluster.local/ns/x/sa/y", Peer: netip.MustParseAddr("10.0.0.1"), Local: netip.MustParseAddrPort("127.0.181.10:8000")},
		Request: req, Path: "/other",
	}
	b.ReportAllocs()
	for b.Loop() {
		if d := chain.CheckHTTP(context.Background(), in); d.Reply == nil {
			b.Fatal("allowed")
		}
	}
}
