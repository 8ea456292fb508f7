package authz

import (
	"net/http"
	"strings"
	"testing"

	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/controlplane/model"
	"github.com/lucid-mesh/lucid/internal/controlplane/translate"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/xdsclient"
	"github.com/lucid-mesh/lucid/internal/diag/simulate"
)

// TestWhyInbound: `lucid why <workload> --inbound <url> --principal P` walks the policies of
// the workload's sidecar on its decoded configuration: the normalised path, the decision,
// and a refusal exactly as the sidecar sends it (status, body, x-lucid-error).
func TestWhyInbound(t *testing.T) {
	s := suite{Config: `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: foo}
spec:
  action: DENY
  rules: [{to: [{operation: {paths: ["/admin*"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: from-sleep, namespace: foo}
spec:
  rules: [{from: [{source: {principals: ["cluster.local/ns/default/sa/sleep"]}}]}]
`}
	inbound := decodedInbound(t, s, nil)
	env := simulate.New(&resource.Snapshot{Listeners: map[string]*resource.Listener{inbound.Name: inbound}}, nil)
	for _, c := range []struct {
		principal, url string
		status         int
		path, authz    string // substrings
		lucidError     string
	}{
		{principal: "cluster.local/ns/default/sa/sleep", url: "http://httpbin.foo:8000/api/../admin/x", status: 403,
			path: "/admin/x (normalised)", authz: "denied (rbac_access_denied_matched_policy[ns[foo]-policy[deny-admin]-rule[0]])",
			lucidError: `-: RBAC access denied: DENY policy AuthorizationPolicy foo/deny-admin rules[0]: path "/admin/x"`},
		{url: "http://httpbin.foo:8000/ip", status: 403, authz: "denied (rbac_access_denied_matched_policy[none])",
			lucidError: "-: RBAC access denied: no ALLOW policy matched; policies considered: AuthorizationPolicy foo/from-sleep rules[0] (the peer has no mTLS identity"},
		{principal: "cluster.local/ns/default/sa/sleep", url: "http://httpbin.foo:8000/ip", authz: "allowed by"},
		{principal: "cluster.local/ns/default/sa/sleep", url: "http://httpbin.foo:8000/a/%00", status: 400,
			lucidError: "-: path \"/a/%00\" refused by path normalisation: an escaped NUL"},
	} {
		env.Principal = c.principal
		req, err := http.NewRequest(http.MethodGet, c.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		tr := env.WhyInbound(req)
		var out strings.Builder
		if err := simulate.Render(&out, tr); err != nil {
			t.Fatal(err)
		}
		if testing.Verbose() {
			t.Log(out.String())
		}
		if c.status != 0 && tr.Outcome.Status != c.status || c.status == 0 && tr.Outcome.Status == 403 ||
			!strings.Contains(tr.Path, c.path) || !strings.Contains(tr.Authz, c.authz) || !strings.HasPrefix(tr.Outcome.LucidError, c.lucidError) {
			t.Errorf("%s as %q:\n%s\nwant status %d, path %q, authorization %q, x-lucid-error %q", c.url, c.principal, out.String(), c.status, c.path, c.authz, c.lucidError)
		}
		if c.authz != "" && !strings.Contains(out.String(), "authorization") {
			t.Errorf("the rendered trace has no authorization line:\n%s", out.String())
		}
	}
}

// TestWhyGateway: `lucid why <gateway> <url>` shows the gateway's path normalisation and
// policies before its routes, on the configuration the gateway decodes.
func TestWhyGateway(t *testing.T) {
	objs := parse(t, "registry.yaml", sidecarRegistry(t))
	for name, doc := range gatewayFiles("") {
		if name != "registry.yaml" {
			objs = append(objs, parse(t, name, doc)...)
		}
	}
	m, _ := model.Build(objs, config.DefaultMeshConfig())
	p, err := model.ParseNodeID("router~" + scGateway + "~gw.istio-system~istio-system.svc.cluster.local")
	if err != nil {
		t.Fatal(err)
	}
	res := translate.Generate(m, m.ResolveProxy(p))
	snap := &resource.Snapshot{Listeners: map[string]*resource.Listener{}, Routes: map[string]*resource.RouteConfig{}}
	for _, msg := range res.Listeners {
		l, err := xdsclient.DecodeListener(msg.(*listenerpb.Listener))
		if err != nil {
			t.Fatal(err)
		}
		snap.Listeners[l.Name] = l
	}
	for _, msg := range res.Routes {
		rc, err := xdsclient.DecodeRouteConfig(msg.(*routepb.RouteConfiguration))
		if err != nil {
			t.Fatal(err)
		}
		snap.Routes[rc.Name] = rc
	}
	env := simulate.New(snap, nil)
	req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:8080/api/%2e%2e/admin", nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := env.WhyGateway(req, simulate.ClientConn(req))
	var out strings.Builder
	if err := simulate.Render(&out, tr); err != nil {
		t.Fatal(err)
	}
	if tr.Outcome.Status != 403 || tr.Path != "/admin (normalised)" ||
		!strings.HasPrefix(tr.Outcome.LucidError, "-: RBAC access denied: DENY policy AuthorizationPolicy istio-system/deny-admin rules[0]") {
		t.Errorf("got:\n%s\nwant the normalised /admin refused by istio-system/deny-admin", out.String())
	}
}

// TestWhyInboundSniffedPort: on a port without a declared protocol, `lucid why --inbound`
// takes the chain the sidecar sniffs an HTTP request into (its HTTP connection manager,
// with the workload's policies), not the port's TCP chain, and says so.
func TestWhyInboundSniffedPort(t *testing.T) {
	s := suite{Config: `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: lines, namespace: foo}
spec:
  hosts: [lines.foo.svc.cluster.local]
  ports: [{number: 9100, name: lines}]
  resolution: STATIC
  workloadSelector: {labels: {app: httpbin}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: foo}
spec:
  action: DENY
  rules: [{to: [{operation: {paths: ["/admin*"]}}]}]
`}
	inbound := decodedInbound(t, s, nil)
	env := simulate.New(&resource.Snapshot{Listeners: map[string]*resource.Listener{inbound.Name: inbound}}, nil)
	req, err := http.NewRequest(http.MethodGet, "http://lines.foo:9100/admin", nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := env.WhyInbound(req)
	var out strings.Builder
	if err := simulate.Render(&out, tr); err != nil {
		t.Fatal(err)
	}
	// The HTTP chain's path rules apply: a TCP chain would not see the path at all.
	if !strings.Contains(tr.ListenerNote, "protocol not declared: the request is sniffed as HTTP") || tr.Outcome.Status != 403 ||
		!strings.Contains(tr.Authz, "deny-admin") {
		t.Fatalf("why --inbound http://lines.foo:9100/admin:\n%s\nwant the sniffed HTTP chain and its DENY policy", out.String())
	}
}
