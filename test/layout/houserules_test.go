package layout

import (
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The house rule on replies the proxy invents: each is decided in one home, which gives it
// Envoy's response flag, status and body and Lucid's x-lucid-error, and records it for the
// access log and the metrics (docs/errors.md is the catalogue). So outside the homes, no
// non-test code names the x-lucid-error header or an Envoy response flag; the exceptions
// below only read or print the header, each for the reason given.

const streaminfoPath = module + "/internal/dataplane/streaminfo"

// replyHomes may set x-lucid-error and response flags.
var replyHomes = map[string]string{
	"internal/dataplane/forward":    "decides every reply the proxy invents: the router's, the tcp_proxy's, CONNECT tunnels'",
	"internal/dataplane/streaminfo": "defines the response flags and the record that carries them",
}

// headerReaders may name the x-lucid-error header to read or print it, never to set it.
var headerReaders = map[string]string{
	"internal/diag/simulate":     "`lucid why` prints the header's name beside the value forward's decision gives",
	"internal/local/demoapp":     "the demo app reads the header its callee's sidecar sent, to show why a call failed",
	"bench/keepalive":            "the benchmark client reads the header to report why a request failed",
	"internal/testutil/meshtest": "the load generator of the mesh tests reports why a request failed",
}

// streaminfoTypes are what streaminfo exports besides the flags.
var streaminfoTypes = []string{"Info", "Peer", "Flag", "AllFlags"}

// goFiles are the non-test Go files in dir (for every platform: the rule holds for all).
func goFiles(t *testing.T, dir string) []string {
	t.Helper()
	all, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(all, func(f string) bool { return strings.HasSuffix(f, "_test.go") })
}

// streaminfoName is the name file f imports streaminfo under ("" when it does not).
func streaminfoName(f *ast.File) string {
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == streaminfoPath {
			if imp.Name != nil {
				return imp.Name.Name
			}
			return "streaminfo"
		}
	}
	return ""
}

func TestRepliesHaveOneHome(t *testing.T) {
	fset := token.NewFileSet()
	homes := slices.Sorted(maps.Keys(replyHomes))
	readers := map[string]bool{} // header readers seen
	homeHeaders, homeFlags := 0, 0
	for _, p := range list(t) { // layout_test.go: every package of the module
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		_, home := replyHomes[rel]
		for _, path := range goFiles(t, p.Dir) {
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			si := streaminfoName(f)
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.BasicLit:
					if v, err := strconv.Unquote(n.Value); n.Kind != token.STRING || err != nil || !strings.EqualFold(v, "x-lucid-error") {
						return true
					}
					switch {
					case home:
						homeHeaders++
					case headerReaders[rel] != "":
						readers[rel] = true
					default:
						t.Errorf("%s names the x-lucid-error header: only %v set it (a reply the proxy invents is decided there); "+
							"a package that only reads or prints it goes into headerReaders with its reason", fset.Position(n.Pos()), homes)
					}
				case *ast.SelectorExpr:
					id, ok := n.X.(*ast.Ident)
					if !ok || si == "" || id.Name != si || slices.Contains(streaminfoTypes, n.Sel.Name) {
						return true
					}
					if home {
						homeFlags++
						return true
					}
					t.Errorf("%s names the response flag streaminfo.%s: only %v set response flags", fset.Position(n.Pos()), n.Sel.Name, homes)
				}
				return true
			})
		}
	}
	// The scan finds what the homes do (a scanner that finds nothing cannot fail).
	if homeHeaders == 0 || homeFlags == 0 {
		t.Errorf("found %d x-lucid-error names and %d response flags in the homes: the scan is broken", homeHeaders, homeFlags)
	}
	for rel, why := range headerReaders {
		if !readers[rel] {
			t.Errorf("headerReaders lists %s (%s), which no longer names the header: remove the exception", rel, why)
		}
	}
}
