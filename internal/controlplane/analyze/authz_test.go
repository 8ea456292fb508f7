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
		"Warning [IST0127] (AuthorizationPolicy foo/typo-selector",
		"Warning [IST0127] (AuthorizationPolicy nobody/empty-namespace",
		`Warning [LUC0010] (AuthorizationPolicy foo/callers policies.yaml:19) Principal "example.org/ns/bar/sa/sleep" is in trust domain "example.org"`,
		"Warning [LUC0011] (AuthorizationPolicy foo/callers policies.yaml:21) The rule needs a verified JWT, but no RequestAuthentication applies to foo/httpbin",
		"Warning [LUC0012] (AuthorizationPolicy foo/callers policies.yaml:19) The rule never allows connections to TCP port foo/httpbin:9000",
		"Warning [LUC0012] (AuthorizationPolicy foo/deny-admin policies.yaml:28) The rule's HTTP-only field is ignored on TCP port foo/httpbin:9000",
		`Error [LUC0013] (AuthorizationPolicy foo/ext policies.yaml:35) Extension provider "opa" cannot be used`,
		`Warning [LUC0017] (AuthorizationPolicy foo/relative-paths policies.yaml:61) Path "admin/*" does not start with '/': it matches no request`,
		`Warning [LUC0017] (AuthorizationPolicy foo/relative-paths policies.yaml:62) Path "health" does not start with '/': it matches no request`,
	} {
		if !strings.Contains(render(ms), want) {
			t.Errorf("no message containing %q", want)
		}
	}
	for _, fine := range []string{`"/ok"`, `"*.php"`, `"{**}/x"`} {
		if strings.Contains(render(ms), "Path "+fine) {
			t.Errorf("path %s was reported", fine)
		}
	}
	if strings.Contains(render(ms), "bar\" ") || strings.Contains(render(ms), `not found: "bar"`) {
		t.Error("a known namespace was reported")
	}
}
