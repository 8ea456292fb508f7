package model

import (
	"slices"
	"testing"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

const securityYAML = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: mesh-deny, namespace: istio-system}
spec: {action: DENY, rules: [{}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ns-allow, namespace: foo}
spec: {rules: [{}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: httpbin-audit, namespace: foo}
spec: {selector: {matchLabels: {app: httpbin}}, action: AUDIT, rules: [{}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: other-app, namespace: foo}
spec: {selector: {matchLabels: {app: other}}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: bar-policy, namespace: bar}
spec: {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: gw-target, namespace: foo}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: ingress}]
  action: CUSTOM
  provider: {name: p}
  rules: [{}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: dry
  namespace: foo
  annotations: {istio.io/dry-run: "true"}
spec: {action: DENY, rules: [{}]}
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: foo}
spec: {selector: {matchLabels: {app: httpbin}}, jwtRules: [{issuer: i}]}
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: gw-jwt, namespace: foo}
spec: {targetRef: {group: gateway.networking.k8s.io, kind: Gateway, name: ingress}, jwtRules: [{issuer: g}]}
`

func names(ps []*AuthzPolicy) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Namespace+"/"+p.Name)
	}
	return out
}

// Istio's policy attachment: root namespace mesh-wide, the proxy's namespace, selectors;
// targetRef policies only for the Kubernetes Gateway they name.
func TestPoliciesFor(t *testing.T) {
	objs, diags := config.Parse("s.yaml", []byte(securityYAML))
	for _, d := range diags {
		if d.Level == config.Error {
			t.Fatal(d)
		}
	}
	m, _ := Build(objs, config.DefaultMeshConfig())
	sidecar := &Proxy{Namespace: "foo", Labels: map[string]string{"app": "httpbin"}}
	pp := m.PoliciesFor(sidecar)
	if got := names(pp.Deny); !slices.Equal(got, []string{"foo/dry", "istio-system/mesh-deny"}) {
		t.Errorf("deny %v", got)
	}
	if got := names(pp.Allow); !slices.Equal(got, []string{"foo/ns-allow"}) {
		t.Errorf("allow %v", got)
	}
	if got := names(pp.Audit); !slices.Equal(got, []string{"foo/httpbin-audit"}) {
		t.Errorf("audit %v", got)
	}
	if len(pp.Custom) != 0 {
		t.Errorf("a sidecar took the targetRef policy: %v", names(pp.Custom))
	}
	if !pp.Deny[0].DryRun || pp.Deny[1].DryRun {
		t.Error("dry-run annotation not read")
	}
	if ras := m.RequestAuthenticationsFor(sidecar); len(ras) != 1 || ras[0].Name != "jwt" {
		t.Errorf("request authentications %v", ras)
	}

	gateway := &Proxy{Namespace: "foo", Labels: map[string]string{GatewayNameLabel: "ingress"}}
	pp = m.PoliciesFor(gateway)
	if got := names(pp.Custom); !slices.Equal(got, []string{"foo/gw-target"}) {
		t.Errorf("gateway custom %v", got)
	}
	if got := names(pp.Allow); !slices.Equal(got, []string{"foo/ns-allow"}) {
		t.Errorf("gateway allow (selector policies still apply) %v", got)
	}
	if ras := m.RequestAuthenticationsFor(gateway); len(ras) != 1 || ras[0].Name != "gw-jwt" {
		t.Errorf("gateway request authentications %v", ras)
	}
	other := &Proxy{Namespace: "foo", Labels: map[string]string{GatewayNameLabel: "other"}}
	if pp := m.PoliciesFor(other); len(pp.Custom) != 0 {
		t.Errorf("another gateway took the policy: %v", names(pp.Custom))
	}
	bar := &Proxy{Namespace: "bar", Labels: map[string]string{}}
	if got := names(m.PoliciesFor(bar).Allow); !slices.Equal(got, []string{"bar/bar-policy"}) {
		t.Errorf("bar allow %v", got)
	}
	if m.TrustDomain() != "cluster.local" {
		t.Errorf("trust domain %q", m.TrustDomain())
	}
}
