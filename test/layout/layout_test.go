// Package layout checks the house rules of the source tree: every package under internal/
// lives in a role folder, imports point only down the roles (control plane and data plane
// share nothing but internal/contract and the xDS wire format), and the linter's import
// rules (.golangci.yml depguard) name every role folder, so a new package is guarded by
// where it lives.
package layout

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/lucid-mesh/lucid"

// allowed lists, per role folder under internal/, the role folders its non-test code may
// import (its own folder always). Tests may also import internal/testutil.
var allowed = map[string][]string{
	"contract":     {},
	"version":      {},
	"pki":          {}, // certificates and SPIFFE identities: a leaf every role may use
	"dataplane":    {"contract", "version", "pki"},
	"kube":         {"contract", "version", "pki"},
	"controlplane": {"kube", "contract", "version", "pki"},
	"agent":        {"dataplane", "contract", "version", "pki"},
	"diag":         {"dataplane", "contract", "version", "pki"},
	"local":        {"controlplane", "contract", "version", "pki"},
	"testutil":     {"controlplane", "dataplane", "agent", "kube", "diag", "local", "contract", "version", "pki"},
	"cli":          {"controlplane", "dataplane", "agent", "kube", "diag", "local", "contract", "version", "pki"},
}

type pkg struct {
	ImportPath   string
	Dir          string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func list(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Dir = root(t)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// role is the role folder of an import path under internal/, or "" outside internal/.
func role(path string) string {
	rest, ok := strings.CutPrefix(path, module+"/internal/")
	if !ok {
		return ""
	}
	r, _, _ := strings.Cut(rest, "/")
	return r
}

func TestEveryPackageHasARole(t *testing.T) {
	for _, p := range list(t) {
		r := role(p.ImportPath)
		if r == "" {
			continue
		}
		if _, ok := allowed[r]; !ok {
			t.Errorf("%s is in internal/%s, which is not a role folder (%v): move it, or add the role here, to .golangci.yml and to docs/architecture.md",
				p.ImportPath, r, keys())
		}
	}
}

func keys() []string {
	var ks []string
	for k := range allowed {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func TestImportsPointDown(t *testing.T) {
	for _, p := range list(t) {
		from := role(p.ImportPath)
		if from == "" {
			continue
		}
		check := func(imports []string, test bool) {
			for _, imp := range imports {
				to := role(imp)
				if to == "" || to == from || slices.Contains(allowed[from], to) || (test && to == "testutil") {
					continue
				}
				kind := "imports"
				if test {
					kind = "imports in a test"
				}
				t.Errorf("%s %s %s: internal/%s may import only %v", p.ImportPath, kind, imp, from, allowed[from])
			}
		}
		check(p.Imports, false)
		check(p.TestImports, true)
		check(p.XTestImports, true)
	}
}

// TestLinterGuardsEveryRole checks that .golangci.yml's depguard has a rule whose files
// name each role folder, so that the linter reports a forbidden import in the editor too.
func TestLinterGuardsEveryRole(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root(t), ".golangci.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for r := range allowed {
		if r == "cli" {
			continue // the top: it may import every role but the test kits, which no-test-kits-in-production covers
		}
		if !strings.Contains(string(b), `"**/internal/`+r+`/**"`) {
			t.Errorf(".golangci.yml: no depguard rule names **/internal/%s/**", r)
		}
	}
}

// TestArchitectureNamesEveryPackage keeps docs/architecture.md the map of the code: every
// package of the module has its row in "## Packages".
func TestArchitectureNamesEveryPackage(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root(t), "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range list(t) {
		rel := strings.TrimPrefix(p.ImportPath, module+"/")
		if strings.HasPrefix(rel, "bench/") || rel == module {
			continue
		}
		if !strings.Contains(string(b), "| `"+rel+"` |") {
			t.Errorf("docs/architecture.md has no row for %s: add one (| `%s` | what it does, where it sits in the flow |)", rel, rel)
		}
	}
}
