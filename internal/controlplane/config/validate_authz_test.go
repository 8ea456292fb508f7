package config

import (
	"strings"
	"testing"
)

// securityCases parses one security.istio.io object per case and checks that each wanted
// diagnostic (a substring, with its level) appears, and whether the object is accepted.
func securityCases(t *testing.T, kind string, cases []struct {
	name, spec, annotations string
	want                    []string
	valid                   bool
}) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := "apiVersion: security.istio.io/v1\nkind: " + kind + "\nmetadata:\n  name: x\n  namespace: foo\n"
			if tc.annotations != "" {
				d += "  annotations: " + tc.annotations + "\n"
			}
			d += "spec:\n" + indent(tc.spec)
			objs, diags := Parse("t.yaml", []byte(d))
			got := strings.Join(diagStrings(diags), "\n")
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("diagnostics\n%s\nwant one containing %q", got, w)
				}
			}
			if accepted := len(objs) == 1; accepted != tc.valid {
				t.Errorf("accepted = %v, want %v (diagnostics: %s)", accepted, tc.valid, got)
			}
		})
	}
}

func TestValidateAuthorizationPolicyRules(t *testing.T) {
	securityCases(t, KindAuthorizationPolicy, []struct {
		name, spec, annotations string
		want                    []string
		valid                   bool
	}{
		{name: "full rule", valid: true, spec: `
rules:
- from: [{source: {principals: ["cluster.local/ns/a/sa/b"], ipBlocks: ["10.0.0.0/8"], requestPrincipals: ["iss/sub"]}}]
  to: [{operation: {methods: ["GET"], paths: ["/api/{*}/items", "/files/{**}"], ports: ["8080"]}}]
  when: [{key: "request.headers[x-a]", values: ["v"]}, {key: "request.auth.claims[a][b]", values: ["c"]}]
`},
		{name: "bad CIDR", spec: "rules:\n- from: [{source: {ipBlocks: [\"10.0.0.0/33\"]}}]\n",
			want: []string{`error t.yaml:8: AuthorizationPolicy foo/x: spec.rules[0].from[0].source.ipBlocks[0]: bad CIDR range (10.0.0.0/33)`}},
		{name: "bad port", spec: "rules:\n- to: [{operation: {ports: [\"http\"]}}]\n",
			want: []string{"spec.rules[0].to[0].operation.ports[0]: bad port (http)"}},
		{name: "empty source", spec: "rules:\n- from: [{source: {}}]\n",
			want: []string{"spec.rules[0].from[0].source: `from.source` must not be empty"}},
		{name: "empty operation", spec: "rules:\n- to: [{operation: {}}]\n",
			want: []string{"`to.operation` must not be empty"}},
		{name: "empty value", spec: "rules:\n- to: [{operation: {paths: [\"\"]}}]\n",
			want: []string{"spec.rules[0].to[0].operation.paths[0]: empty value not allowed"}},
		{name: "serviceAccounts with namespaces", spec: "rules:\n- from: [{source: {serviceAccounts: [sa], namespaces: [ns]}}]\n",
			want: []string{"cannot set serviceAccounts with namespaces or principals"}},
		{name: "service account with a wildcard", spec: "rules:\n- from: [{source: {serviceAccounts: [\"s*\"]}}]\n",
			want: []string{"serviceAccounts[0]: wildcard not allowed"}},
		{name: "path template not last", spec: "rules:\n- to: [{operation: {paths: [\"/a/{**}/b/{*}\"]}}]\n",
			want: []string{"{**} is not the last operator"}},
		{name: "unknown when key", spec: "rules:\n- when: [{key: destination.name, values: [a]}]\n",
			want: []string{"invalid `value` for `key` destination.name: deprecated attribute destination.name"}},
		{name: "when header without brackets", spec: "rules:\n- when: [{key: request.headers, values: [a]}]\n",
			want: []string{"bad key (request.headers): should have format a[b]"}},
		{name: "CUSTOM with principals", spec: "action: CUSTOM\nprovider: {name: p}\nrules:\n- from: [{source: {principals: [a]}}]\n",
			want: []string{"principals is currently not supported with CUSTOM action"}},
		{name: "targetRef to a Deployment", spec: "targetRef: {kind: Deployment, name: d}\n",
			want: []string{"targetRef must be to one of"}},
		{name: "targetRef with a namespace", spec: "targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: g, namespace: other}]\n",
			want: []string{"cross namespace referencing is not supported"}},
		{name: "DENY with only HTTP attributes warns", valid: true, spec: "action: DENY\nrules:\n- to: [{operation: {methods: [GET]}}]\n",
			want: []string{"warning", "will deny all traffic to TCP ports under its scope"}},
		{name: "dry-run not a boolean", valid: true, annotations: "{istio.io/dry-run: maybe}", spec: "rules: [{}]\n",
			want: []string{`"maybe" is not a boolean: the policy is enforced`}},
	})
}

func TestValidateRequestAuthentication(t *testing.T) {
	securityCases(t, KindRequestAuthentication, []struct {
		name, spec, annotations string
		want                    []string
		valid                   bool
	}{
		{name: "jwksUri", valid: true, spec: "jwtRules:\n- issuer: https://i\n  jwksUri: https://i/jwks\n  fromHeaders: [{name: x-jwt, prefix: 'Bearer '}]\n  outputClaimToHeaders: [{header: x-sub, claim: sub}]\n"},
		{name: "no issuer nor jwksUri", spec: "jwtRules:\n- audiences: [a]\n",
			want: []string{"spec.jwtRules[0]: issuer or jwksUri must be non-empty string"}},
		{name: "ftp scheme", spec: "jwtRules:\n- issuer: i\n  jwksUri: ftp://x/jwks\n",
			want: []string{`spec.jwtRules[0].jwksUri: URI scheme "ftp" is not supported`}},
		{name: "file scheme is a Lucid extension", valid: true, spec: "jwtRules:\n- issuer: i\n  jwksUri: file:///etc/jwks.json\n",
			want: []string{"warning", "file:// key sets are a Lucid extension"}},
		{name: "bad inline jwks", spec: "jwtRules:\n- issuer: i\n  jwks: 'not json'\n",
			want: []string{"spec.jwtRules[0].jwks: jwks parse error"}},
		{name: "empty audience", spec: "jwtRules:\n- issuer: i\n  audiences: ['']\n",
			want: []string{"audience must be non-empty string"}},
		{name: "bad claim header", spec: "jwtRules:\n- issuer: i\n  outputClaimToHeaders: [{header: 'x sub', claim: sub}]\n",
			want: []string{`invalid header name "x sub"`}},
		{name: "empty fromParams", spec: "jwtRules:\n- issuer: i\n  fromParams: ['']\n",
			want: []string{"location query must be non-empty string"}},
		{name: "timeout below 1ms", spec: "jwtRules:\n- issuer: i\n  timeout: 100us\n",
			want: []string{"duration must be greater than 1ms"}},
		{name: "selector and targetRef", spec: "selector: {matchLabels: {app: a}}\ntargetRef: {group: gateway.networking.k8s.io, kind: Gateway, name: g}\njwtRules: [{issuer: i}]\n",
			want: []string{"only one of targetRefs or workloadSelector can be set"}},
	})
}
