package analyze

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestAuthorizationChecks: testdata/authz has one of each authorization mistake; the
// golden file is what `lucid analyze` prints for it.
func TestAuthorizationChecks(t *testing.T) {
	ms := run(t, filepath.Join("testdata", "authz"))
	golden(t, "authz", render(ms))
	for _, want := range []string{
		"Warning [IST0127] (AuthorizationPolicy typo-selector.foo",
		"Warning [IST0127] (AuthorizationPolicy empty-namespace.nobody",
		"Warning [IST0127] (AuthorizationPolicy gateway-only.foo",
		"Warning [IST0127] (RequestAuthentication jwt-typo.foo",
		`Error [IST0101] (AuthorizationPolicy callers.foo policies.yaml:14) Referenced namespace not found: "barr"`,
		`Warning [LUC0010] (AuthorizationPolicy callers.foo policies.yaml:14) Principal "example.org/ns/bar/sa/sleep" is in trust domain "example.org"`,
		"Warning [LUC0011] (AuthorizationPolicy callers.foo policies.yaml:14) The rule needs a verified JWT, but no RequestAuthentication applies to foo/httpbin",
		"Warning [LUC0012] (AuthorizationPolicy callers.foo policies.yaml:14) The rule never allows connections to TCP port foo/httpbin:9000",
		"Warning [LUC0012] (AuthorizationPolicy deny-admin.foo policies.yaml:24) The rule's HTTP-only field is ignored on TCP port foo/httpbin:9000",
		`Error [LUC0013] (AuthorizationPolicy ext.foo policies.yaml:31) Extension provider "opa" cannot be used`,
	} {
		if !strings.Contains(render(ms), want) {
			t.Errorf("no message containing %q", want)
		}
	}
	if strings.Contains(render(ms), "bar\" ") || strings.Contains(render(ms), `not found: "bar"`) {
		t.Error("a known namespace was reported")
	}
}
