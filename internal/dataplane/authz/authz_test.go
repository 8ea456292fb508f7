package authz

import (
	"context"
	"net/http"
	"net/netip"
	"testing"

	"github.com/lucid-mesh/lucid/internal/dataplane/extauthz"
	"github.com/lucid-mesh/lucid/internal/dataplane/jwtauthn"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

func denyAdmin(dryRun bool) resource.AuthFilter {
	r := &resource.RBAC{Action: resource.RBACDeny, Policies: []resource.RBACPolicy{{
		Name:        "ns[foo]-policy[deny-admin]-rule[0]",
		Permissions: []resource.Permission{{Kind: resource.PermURLPath, String: resource.StringMatcher{Kind: resource.MatchPrefix, Value: "/admin"}}},
		Principals:  []resource.Principal{{Kind: resource.PrincAny}},
	}}}
	f := &resource.RBACFilter{Rules: r}
	if dryRun {
		f = &resource.RBACFilter{ShadowRules: r, ShadowRulesStatPrefix: dryRunDenyPrefix}
	}
	return resource.AuthFilter{Name: "envoy.filters.http.rbac", RBAC: f}
}

func input(path string) *HTTPInput {
	r, _ := http.NewRequest(http.MethodGet, "http://httpbin"+path, nil)
	return &HTTPInput{Request: r, Path: path, Scheme: "http",
		Conn: Conn{Peer: netip.MustParseAddr("10.0.0.1"), Local: netip.MustParseAddrPort("127.0.181.10:8000")}}
}

// The RBAC refusal is Envoy's: 403, "RBAC: access denied", details naming the policy, no
// response flag; Lucid's explanation names the policy, the rule and the attribute.
func TestRBACDeniedReply(t *testing.T) {
	c, err := New([]resource.AuthFilter{denyAdmin(false)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := c.CheckHTTP(context.Background(), input("/admin/users"))
	r := d.Reply
	if r == nil {
		t.Fatal("allowed")
	}
	want := Reply{
		Status: 403, Body: "RBAC: access denied",
		Details:     "rbac_access_denied_matched_policy[ns[foo]-policy[deny-admin]-rule[0]]",
		Explanation: `RBAC access denied: DENY policy AuthorizationPolicy foo/deny-admin rules[0]: path "/admin/users" matches prefix "/admin"`,
		Policy:      "ns[foo]-policy[deny-admin]-rule[0]",
	}
	if r.Status != want.Status || r.Body != want.Body || r.Details != want.Details || r.Explanation != want.Explanation || r.Policy != want.Policy || r.External {
		t.Errorf("reply\n got %+v\nwant %+v", *r, want)
	}
	if d := c.CheckHTTP(context.Background(), input("/public")); d.Reply != nil {
		t.Errorf("/public refused: %+v", d.Reply)
	}
	if c.RBACFilters()[0].Stats().PolicyDenied["ns[foo]-policy[deny-admin]-rule[0]"].Load() != 1 {
		t.Error("the per-policy denial counter did not count")
	}
}

func TestDryRunIsLoggedNotEnforced(t *testing.T) {
	c, _ := New([]resource.AuthFilter{denyAdmin(true)}, Options{})
	d := c.CheckHTTP(context.Background(), input("/admin"))
	if d.Reply != nil || len(d.DryRun) != 1 || d.DryRun[0] != `dry-run: would be denied: DENY policy AuthorizationPolicy foo/deny-admin rules[0]: path "/admin" matches prefix "/admin"` {
		t.Errorf("reply %+v dry-run %q", d.Reply, d.DryRun)
	}
}

// A connection refused by the network RBAC filter is closed with Envoy's termination
// details.
func TestCheckConn(t *testing.T) {
	allowNone := resource.AuthFilter{Name: "envoy.filters.network.rbac", RBAC: &resource.RBACFilter{StatPrefix: "tcp.", Rules: &resource.RBAC{Action: resource.RBACAllow}}}
	c, _ := New([]resource.AuthFilter{allowNone}, Options{})
	d := c.CheckConn(Conn{Peer: netip.MustParseAddr("10.0.0.1"), Local: netip.MustParseAddrPort("127.0.181.10:9000")})
	if d.Allowed || d.Details != "rbac_access_denied_matched_policy[none]" || d.Policy != "none" ||
		d.Explanation != "connection closed by RBAC: no ALLOW policy matched; no policies" {
		t.Errorf("decision %+v", d)
	}
	var empty *Chain
	if !empty.CheckConn(Conn{}).Allowed || !empty.Empty() {
		t.Error("a nil chain refused")
	}
}

func TestJWTRejectedReply(t *testing.T) {
	res := &jwtauthn.Result{Status: jwtauthn.Expired, FailedLocation: "header authorization", FailedIssuer: "https://i", FailedProvider: "origins-0"}
	r := JWTRejected(res, "http", "httpbin:8000", "/p?q=1")
	if r.Status != 401 || r.Body != "Jwt is expired" || r.Details != "jwt_authn_access_denied{Jwt_is_expired}" || r.External ||
		r.Headers.Get("Www-Authenticate") != `Bearer realm="http://httpbin:8000/p?q=1", error="invalid_token"` ||
		r.Explanation != `JWT rejected by RequestAuthentication: Jwt is expired (token in header authorization, issuer "https://i", provider origins-0)` {
		t.Errorf("reply %+v", *r)
	}
}

func TestExtAuthzRefusedReply(t *testing.T) {
	res := &extauthz.Response{Status: extauthz.Denied, Code: 401, Body: []byte("nope"), Headers: http.Header{"X-Reason": {"r"}}}
	r := ExtAuthzRefused("envoy.filters.http.ext_authz", res, "istio-ext-authz-opa-ns[foo]-policy[ext]-rule[0]")
	if r.Status != 401 || r.Body != "nope" || r.Details != "ext_authz_denied" || !r.External ||
		r.Explanation != "denied by ext_authz envoy.filters.http.ext_authz: the authorization server answered 401 (CUSTOM AuthorizationPolicy foo/ext rules[0])" {
		t.Errorf("reply %+v", *r)
	}
}

// A chain calls out when it has an ext_authz step: RBAC and JWT steps run in the caller.
func TestCallsOut(t *testing.T) {
	var none *Chain
	rbacOnly, _ := New([]resource.AuthFilter{denyAdmin(false)}, Options{})
	ext, _ := New([]resource.AuthFilter{denyAdmin(false), {Name: "ext", ExtAuthz: &resource.ExtAuthz{Cluster: "authz", URI: "http://authz"}}}, Options{})
	if none.CallsOut() || rbacOnly.CallsOut() || !ext.CallsOut() {
		t.Fatalf("CallsOut: none %v, RBAC %v, RBAC and ext_authz %v", none.CallsOut(), rbacOnly.CallsOut(), ext.CallsOut())
	}
}

// A decision changes the upstream request only when a JWT's result or an authorization
// server's answer is part of it: RBAC policies alone leave it as it is.
func TestDecisionChangesRequest(t *testing.T) {
	if (&Decision{Principal: "p", Audit: true}).ChangesRequest() {
		t.Fatal("an RBAC-only decision says it changes the request")
	}
	if !(&Decision{ext: []*extauthz.Response{{}}}).ChangesRequest() || !(&Decision{jwt: []*jwtauthn.Result{{}}}).ChangesRequest() {
		t.Fatal("a decision with an authorization server's answer or a JWT's result says it changes nothing")
	}
}
