package rbac

import (
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

func re(s string) *regexp.Regexp { return regexp.MustCompile("^(?:" + s + ")$") }

func exact(s string) resource.StringMatcher {
	return resource.StringMatcher{Kind: resource.MatchExact, Value: s}
}

func prefix(s string) resource.StringMatcher {
	return resource.StringMatcher{Kind: resource.MatchPrefix, Value: s}
}

func rx(s string) resource.StringMatcher {
	return resource.StringMatcher{Kind: resource.MatchRegex, Regex: re(s)}
}

func and(ps ...resource.Permission) resource.Permission {
	return resource.Permission{Kind: resource.PermAnd, Rules: ps}
}

func path(m resource.StringMatcher) resource.Permission {
	return resource.Permission{Kind: resource.PermURLPath, String: m}
}

func method(m string) resource.Permission {
	return resource.Permission{Kind: resource.PermHeader, Header: resource.HeaderMatcher{Name: ":method", Value: exact(m)}}
}

func principal(m resource.StringMatcher) resource.Principal {
	return resource.Principal{Kind: resource.PrincAuthenticated, Authenticated: &m}
}

var anyPrincipal = resource.Principal{Kind: resource.PrincAny}

// Envoy's engine: ALLOW allows on a match, DENY denies on a match, the first policy in
// name order is the effective one, LOG always allows and marks.
func TestEngineActions(t *testing.T) {
	admin := resource.RBACPolicy{Name: "b-admin", Permissions: []resource.Permission{path(prefix("/admin"))}, Principals: []resource.Principal{anyPrincipal}}
	get := resource.RBACPolicy{Name: "a-get", Permissions: []resource.Permission{method("GET")}, Principals: []resource.Principal{anyPrincipal}}
	req := func(m, p string) *Request { return &Request{HTTP: true, Method: m, Path: p} }
	for _, tc := range []struct {
		name    string
		action  resource.RBACAction
		req     *Request
		allowed bool
		policy  string
		details string
	}{
		{"allow: a match allows", resource.RBACAllow, req("GET", "/x"), true, "a-get", ""},
		{"allow: the first policy in name order is effective", resource.RBACAllow, req("GET", "/admin"), true, "a-get", ""},
		{"allow: no match denies", resource.RBACAllow, req("POST", "/x"), false, "", "rbac_access_denied_matched_policy[none]"},
		{"deny: a match denies", resource.RBACDeny, req("POST", "/admin"), false, "b-admin", "rbac_access_denied_matched_policy[b-admin]"},
		{"deny: no match allows", resource.RBACDeny, req("POST", "/x"), true, "", ""},
		{"log: allows and marks", resource.RBACLog, req("POST", "/admin"), true, "b-admin", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := Compile("f", &resource.RBACFilter{Rules: &resource.RBAC{Action: tc.action, Policies: []resource.RBACPolicy{get, admin}}})
			res := f.Check(tc.req)
			if res.Allowed != tc.allowed || res.PolicyID != tc.policy {
				t.Fatalf("allowed %v policy %q, want %v %q", res.Allowed, res.PolicyID, tc.allowed, tc.policy)
			}
			if !res.Allowed && res.Details() != tc.details {
				t.Errorf("details %q, want %q", res.Details(), tc.details)
			}
			if tc.action == resource.RBACLog && !res.Logged {
				t.Error("not logged")
			}
		})
	}
}

func TestShadowRulesRecordMetadataAndCount(t *testing.T) {
	f := Compile("f", &resource.RBACFilter{
		ShadowRulesStatPrefix: "istio_dry_run_deny_",
		ShadowRules: &resource.RBAC{Action: resource.RBACDeny, Policies: []resource.RBACPolicy{
			{Name: "ns[foo]-policy[p]-rule[0]", Permissions: []resource.Permission{path(exact("/admin"))}, Principals: []resource.Principal{anyPrincipal}},
		}},
	})
	req := &Request{HTTP: true, Path: "/admin?x=1"}
	res := f.Check(req)
	if !res.Allowed || !res.ShadowSet || res.ShadowAllowed || res.ShadowPolicyID != "ns[foo]-policy[p]-rule[0]" {
		t.Fatalf("result %+v", res)
	}
	fields := req.Metadata.Fields(MetadataNamespace)
	if fields["istio_dry_run_deny_shadow_engine_result"] != EngineDenied || fields["istio_dry_run_deny_shadow_effective_policy_id"] != "ns[foo]-policy[p]-rule[0]" {
		t.Errorf("metadata %v", fields)
	}
	if f.Stats().ShadowDenied.Load() != 1 || f.Stats().Denied.Load() != 0 {
		t.Errorf("stats shadow_denied %d denied %d", f.Stats().ShadowDenied.Load(), f.Stats().Denied.Load())
	}
	if got := f.ExplainShadow(req, res); !strings.Contains(got, `path "/admin" matches exact "/admin"`) {
		t.Errorf("shadow explanation %q", got)
	}
}

func TestPerPolicyDenialCounters(t *testing.T) {
	f := Compile("f", &resource.RBACFilter{Rules: &resource.RBAC{Action: resource.RBACAllow, Policies: []resource.RBACPolicy{
		{Name: "p", Permissions: []resource.Permission{method("GET")}, Principals: []resource.Principal{anyPrincipal}},
	}}})
	f.Check(&Request{HTTP: true, Method: "POST"})
	f.Check(&Request{HTTP: true, Method: "GET"})
	if f.Stats().PolicyDenied["none"].Load() != 1 || f.Stats().Allowed.Load() != 1 || f.Stats().Denied.Load() != 1 {
		t.Errorf("none %d allowed %d denied %d", f.Stats().PolicyDenied["none"].Load(), f.Stats().Allowed.Load(), f.Stats().Denied.Load())
	}
}

// Envoy's header matching: pseudo-headers, values joined with ",", a missing header
// matches only an inverted string matcher, present_match.
func TestHeaderMatching(t *testing.T) {
	req := &Request{HTTP: true, Method: "GET", Authority: "a.example.com", Path: "/p?q",
		Headers: http.Header{"X-Multi": {"a", "b"}, "X-One": {"v"}}}
	for _, tc := range []struct {
		m    resource.HeaderMatcher
		want bool
	}{
		{resource.HeaderMatcher{Name: ":method", Value: exact("GET")}, true},
		{resource.HeaderMatcher{Name: ":authority", Value: resource.StringMatcher{Kind: resource.MatchSuffix, Value: ".EXAMPLE.com", IgnoreCase: true}}, true},
		{resource.HeaderMatcher{Name: ":path", Value: exact("/p?q")}, true},
		{resource.HeaderMatcher{Name: "x-multi", Value: exact("a,b")}, true},
		{resource.HeaderMatcher{Name: "x-one", Present: true}, true},
		{resource.HeaderMatcher{Name: "x-missing", Present: true}, false},
		{resource.HeaderMatcher{Name: "x-missing", Present: true, Invert: true}, true},
		{resource.HeaderMatcher{Name: "x-missing", Value: exact("")}, false},
		{resource.HeaderMatcher{Name: "x-missing", Value: exact(""), TreatMissingAsEmpty: true}, true},
		{resource.HeaderMatcher{Name: "x-missing", Value: exact("v"), Invert: true}, true},
		{resource.HeaderMatcher{Name: "x-one", Value: exact("v"), Invert: true}, false},
	} {
		h := compileHeader(&tc.m)
		if got := h.matches(req); got != tc.want {
			t.Errorf("%+v: %v, want %v", tc.m, got, tc.want)
		}
	}
	// A connection has no headers: even :method is absent.
	h := compileHeader(&resource.HeaderMatcher{Name: ":method", Present: true})
	if h.matches(&Request{Method: "GET"}) {
		t.Error("header matched on a connection")
	}
}

func TestPrincipalsAndAddresses(t *testing.T) {
	req := &Request{
		Principal:      "spiffe://cluster.local/ns/foo/sa/sleep",
		DirectRemoteIP: netip.MustParseAddr("10.1.2.3"),
		RemoteIP:       netip.MustParseAddr("203.0.113.5"),
		DestinationIP:  netip.MustParseAddr("::ffff:127.0.181.10"),
	}
	cidr := netip.MustParsePrefix
	for _, tc := range []struct {
		name string
		p    resource.Principal
		want bool
	}{
		{"namespace regex", principal(rx(".*/ns/foo/.*")), true},
		{"other namespace", principal(rx(".*/ns/bar/.*")), false},
		{"service account regex", principal(rx("spiffe://.+/ns/foo/(.+/|)sa/sleep(/.+)?")), true},
		{"authenticated without a name", resource.Principal{Kind: resource.PrincAuthenticated}, true},
		{"direct remote ip", resource.Principal{Kind: resource.PrincDirectRemoteIP, CIDR: cidr("10.1.0.0/16")}, true},
		{"remote ip is the XFF address", resource.Principal{Kind: resource.PrincRemoteIP, CIDR: cidr("203.0.113.0/24")}, true},
		{"remote ip is not the peer", resource.Principal{Kind: resource.PrincRemoteIP, CIDR: cidr("10.1.0.0/16")}, false},
		{"not", resource.Principal{Kind: resource.PrincNot, Not: &resource.Principal{Kind: resource.PrincAny}}, false},
	} {
		c := compilePrinc(&tc.p)
		if got := c.matches(req); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	// A plaintext peer is never authenticated, so a negated principal matches it.
	plain := &Request{}
	neg := compilePrinc(&resource.Principal{Kind: resource.PrincNot, Not: &resource.Principal{Kind: resource.PrincAuthenticated}})
	if !neg.matches(plain) {
		t.Error("not(authenticated) does not match a plaintext peer")
	}
	dst := compilePerm(&resource.Permission{Kind: resource.PermDestinationIP, CIDR: cidr("127.0.181.0/24")})
	if !dst.matches(req) {
		t.Error("an IPv4-mapped destination does not match its IPv4 block")
	}
}

// JWT payload metadata: Istio's extended matcher (a list element or the value itself),
// nested claims, absent payload.
func TestMetadataMatching(t *testing.T) {
	claim := func(path []string, v resource.ValueMatcher) resource.Principal {
		return resource.Principal{Kind: resource.PrincMetadata, Metadata: resource.MetadataMatcher{
			Filter: "envoy.filters.http.jwt_authn", Path: append([]string{"payload"}, path...), Value: v,
		}}
	}
	str := func(s string) resource.ValueMatcher {
		return resource.ValueMatcher{Kind: resource.ValueString, String: exact(s)}
	}
	extended := func(v resource.ValueMatcher) resource.ValueMatcher {
		return resource.ValueMatcher{Kind: resource.ValueOr, Matchers: []resource.ValueMatcher{{Kind: resource.ValueList, OneOf: &v}, v}}
	}
	var md Metadata
	md.Set("envoy.filters.http.jwt_authn", "payload", map[string]any{
		"iss": "i", "groups": []any{"a", "b"}, "nested": map[string]any{"k": "v"}, "n": 3.0, "admin": true,
	})
	req := &Request{HTTP: true, Metadata: md}
	for _, tc := range []struct {
		name string
		p    resource.Principal
		want bool
	}{
		{"string claim", claim([]string{"iss"}, str("i")), true},
		{"list claim, element", claim([]string{"groups"}, extended(str("b"))), true},
		{"string claim, extended", claim([]string{"iss"}, extended(str("i"))), true},
		{"list claim, no element", claim([]string{"groups"}, extended(str("c"))), false},
		{"nested", claim([]string{"nested", "k"}, str("v")), true},
		{"nested missing", claim([]string{"nested", "x"}, str("v")), false},
		{"number", claim([]string{"n"}, resource.ValueMatcher{Kind: resource.ValueDouble, Double: 3}), true},
		{"bool", claim([]string{"admin"}, resource.ValueMatcher{Kind: resource.ValueBool, Bool: true}), true},
		{"present", claim([]string{"iss"}, resource.ValueMatcher{Kind: resource.ValuePresent, Present: true}), true},
		{"string matcher on a list", claim([]string{"groups"}, str("a")), false},
	} {
		c := compilePrinc(&tc.p)
		if got := c.matches(req); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	c := compilePrinc(&resource.Principal{Kind: resource.PrincMetadata, Metadata: resource.MetadataMatcher{Filter: "envoy.filters.http.jwt_authn", Path: []string{"payload", "iss"}, Value: str("i")}})
	if c.matches(&Request{HTTP: true}) {
		t.Error("matched without a payload")
	}
}

func TestExplanations(t *testing.T) {
	f := Compile("f", &resource.RBACFilter{Rules: &resource.RBAC{Action: resource.RBACAllow, Policies: []resource.RBACPolicy{
		{Name: "ns[foo]-policy[allow-get]-rule[0]", Permissions: []resource.Permission{and(method("GET"), path(prefix("/api/")))}, Principals: []resource.Principal{principal(exact("spiffe://cluster.local/ns/foo/sa/a"))}},
		{Name: "ns[foo]-policy[allow-sleep]-rule[1]", Permissions: []resource.Permission{{Kind: resource.PermAny}}, Principals: []resource.Principal{principal(rx(".*/ns/bar/.*"))}},
		{Name: "ns[foo]-policy[nothing]-rule[0]", Permissions: []resource.Permission{{Kind: resource.PermNot, Not: &resource.Permission{Kind: resource.PermAny}}}, Principals: []resource.Principal{{Kind: resource.PrincNot, Not: &anyPrincipal}}},
	}}})
	req := &Request{HTTP: true, Method: "POST", Path: "/api/x", Principal: "spiffe://cluster.local/ns/foo/sa/a"}
	res := f.Check(req)
	want := `no ALLOW policy matched; policies considered: AuthorizationPolicy foo/allow-get rules[0] (:method "POST" does not match exact "GET"), ` +
		`AuthorizationPolicy foo/allow-sleep rules[1] (source.principal "spiffe://cluster.local/ns/foo/sa/a" does not match regex ".*/ns/bar/.*"), ` +
		`AuthorizationPolicy foo/nothing rules[0] (a policy with no rules matches nothing)`
	if got := f.Explain(req, res); got != want {
		t.Errorf("explanation\n got %s\nwant %s", got, want)
	}
	req = &Request{HTTP: true, Method: "GET", Path: "/api/x", Principal: "spiffe://cluster.local/ns/foo/sa/a"}
	res = f.Check(req)
	if got, want := f.Explain(req, res), `ALLOW policy AuthorizationPolicy foo/allow-get rules[0]: :method "GET" matches exact "GET", path "/api/x" matches prefix "/api/"; source.principal "spiffe://cluster.local/ns/foo/sa/a" matches exact "spiffe://cluster.local/ns/foo/sa/a"`; got != want {
		t.Errorf("explanation\n got %s\nwant %s", got, want)
	}
}

func TestPolicyLabel(t *testing.T) {
	for in, want := range map[string]string{
		"ns[foo]-policy[bar]-rule[2]":                               "AuthorizationPolicy foo/bar rules[2]",
		"istio-ext-authz-my-authz-ns[foo]-policy[ext]-rule[0]":      "AuthorizationPolicy foo/ext rules[0]",
		"ns[foo]-policy[ext]-rule[0]-deny-due-to-bad-CUSTOM-action": "AuthorizationPolicy foo/ext rules[0] -deny-due-to-bad-CUSTOM-action",
		"my-own-policy": `"my-own-policy"`,
	} {
		if got := PolicyLabel(in); got != want {
			t.Errorf("PolicyLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRemoteAddress(t *testing.T) {
	peer := netip.MustParseAddr("10.0.0.1")
	for _, tc := range []struct {
		xff    []string
		remote bool
		hops   uint32
		want   string
	}{
		{nil, false, 0, "10.0.0.1"},
		{[]string{"1.1.1.1"}, false, 0, "1.1.1.1"},
		{[]string{"1.1.1.1, 2.2.2.2"}, false, 0, "2.2.2.2"},
		{[]string{"1.1.1.1, 2.2.2.2"}, false, 1, "1.1.1.1"},
		{[]string{"1.1.1.1", "2.2.2.2"}, false, 0, "2.2.2.2"},
		{[]string{"1.1.1.1, 2.2.2.2"}, true, 0, "10.0.0.1"},
		{[]string{"1.1.1.1, 2.2.2.2"}, true, 1, "2.2.2.2"},
		{[]string{"1.1.1.1, 2.2.2.2"}, true, 2, "1.1.1.1"},
		{[]string{"1.1.1.1, 2.2.2.2"}, true, 3, "10.0.0.1"},
		{[]string{"garbage"}, false, 0, "10.0.0.1"},
		{[]string{"::ffff:1.2.3.4"}, false, 0, "1.2.3.4"},
	} {
		if got := RemoteAddress(peer, tc.xff, tc.remote, tc.hops); got.String() != tc.want {
			t.Errorf("RemoteAddress(%v, remote %v, hops %d) = %s, want %s", tc.xff, tc.remote, tc.hops, got, tc.want)
		}
	}
}

func TestCheckDoesNotAllocate(t *testing.T) {
	f := Compile("f", &resource.RBACFilter{Rules: &resource.RBAC{Action: resource.RBACAllow, Policies: []resource.RBACPolicy{
		{Name: "a", Permissions: []resource.Permission{and(method("POST"), path(prefix("/x")))}, Principals: []resource.Principal{principal(rx(".*/ns/bar/.*"))}},
		{Name: "b", Permissions: []resource.Permission{and(method("GET"), path(prefix("/api/")))}, Principals: []resource.Principal{principal(rx(".*/ns/foo/.*"))}},
	}}})
	req := &Request{HTTP: true, Method: "GET", Path: "/api/x?y", Principal: "spiffe://cluster.local/ns/foo/sa/a", Headers: http.Header{"Accept": {"*/*"}}}
	if n := testing.AllocsPerRun(100, func() {
		if !f.Check(req).Allowed {
			t.Fatal("denied")
		}
	}); n != 0 {
		t.Errorf("%v allocations per Check", n)
	}
}

func TestExplanationListsAFewPolicies(t *testing.T) {
	var policies []resource.RBACPolicy
	for i := range 8 {
		policies = append(policies, resource.RBACPolicy{Name: fmt.Sprintf("ns[foo]-policy[p%d]-rule[0]", i),
			Permissions: []resource.Permission{method("GET")}, Principals: []resource.Principal{anyPrincipal}})
	}
	f := Compile("f", &resource.RBACFilter{Rules: &resource.RBAC{Action: resource.RBACAllow, Policies: policies}})
	req := &Request{HTTP: true, Method: "POST"}
	got := f.Explain(req, f.Check(req))
	if !strings.HasSuffix(got, "AuthorizationPolicy foo/p4 rules[0] (:method \"POST\" does not match exact \"GET\") and 3 more") || strings.Contains(got, "p5") {
		t.Errorf("explanation %q", got)
	}
}
