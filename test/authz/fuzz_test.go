package authz

import (
	"strings"
	"testing"
)

// FuzzPolicyTranslation: whatever AuthorizationPolicy or RequestAuthentication the control
// plane accepts, the sidecar accepts what it is translated into (no NACK) and can build
// its authorization chain from it.
func FuzzPolicyTranslation(f *testing.F) {
	data, err := loadSuitesFile()
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range data {
		if s.Config != "" && !strings.Contains(s.Config, "{{JWKS}}") {
			f.Add(s.Config)
		}
	}
	f.Add("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: x, namespace: foo}\nspec:\n  rules:\n  - to: [{operation: {paths: [\"/a/{**}/b\"]}}]\n")
	f.Add("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: x, namespace: foo}\nspec:\n  rules:\n  - when: [{key: \"request.auth.claims[a][b]\", values: [\"*\"]}]\n")
	f.Fuzz(func(t *testing.T, config string) {
		buildChains(t, suite{Name: "fuzz", Config: config, lenient: true}, nil, &authzServer{})
	})
}
