package diag

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

const streaminfoImport = "github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"

// flagConstants reads streaminfo's flag constants from its source: the const block of
// type Flag, 1 << iota each, so name i has the value 1 << i.
func flagConstants(t *testing.T) map[string]streaminfo.Flag {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join("..", "..", "internal", "dataplane", "streaminfo", "streaminfo.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]streaminfo.Flag{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST || len(g.Specs) == 0 {
			continue
		}
		if first := g.Specs[0].(*ast.ValueSpec); first.Type == nil || first.Type.(*ast.Ident).Name != "Flag" {
			continue
		}
		for i, s := range g.Specs {
			for _, n := range s.(*ast.ValueSpec).Names {
				out[n.Name] = streaminfo.Flag(1) << i
			}
		}
	}
	if len(out) != len(streaminfo.AllFlags()) {
		t.Fatalf("read %d flag constants from streaminfo's source, it has %d flags: the test's reader needs updating", len(out), len(streaminfo.AllFlags()))
	}
	for name, f := range out {
		if s := f.String(); s == "-" || strings.Contains(s, ",") {
			t.Fatalf("streaminfo.%s read as %v: the test's reader needs updating", name, f)
		}
	}
	return out
}

// flagsInTree lists the response flags the non-test Go code of the whole tree names
// (streaminfo.<Flag>, outside streaminfo itself), with one place each.
func flagsInTree(t *testing.T, consts map[string]streaminfo.Flag) map[streaminfo.Flag]string {
	t.Helper()
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	out := map[streaminfo.Flag]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == "testdata" || n == "vendor" || (strings.HasPrefix(n, ".") && path != root) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		name := ""
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == streaminfoImport {
				name = "streaminfo"
				if imp.Name != nil {
					name = imp.Name.Name
				}
			}
		}
		if name == "" { // streaminfo itself, and code that does not import it
			return nil
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == name {
					if fl, ok := consts[sel.Sel.Name]; ok {
						out[fl] = fset.Position(sel.Pos()).String()
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestErrorCatalogueCoversEveryFlag: docs/errors.md has a section for every flag the proxy
// can emit (forward.EmittedFlags), and EmittedFlags lists every response flag the code of
// the whole tree names, wherever it is.
func TestErrorCatalogueCoversEveryFlag(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "errors.md"))
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^## (.+)$`).FindAllStringSubmatch(string(doc), -1) {
		for _, part := range strings.Split(m[1], ",") {
			if code, _, ok := strings.Cut(strings.TrimSpace(part), " — "); ok {
				sections[code] = true
			}
		}
	}
	emitted := map[streaminfo.Flag]bool{}
	for _, f := range forward.EmittedFlags {
		emitted[f] = true
		if !sections[f.String()] {
			t.Errorf("docs/errors.md has no section \"## %s — ...\" for a flag the proxy emits", f)
		}
	}
	used := flagsInTree(t, flagConstants(t))
	if len(used) == 0 {
		t.Fatal("no response flag found in the tree: the scan is broken")
	}
	for f, where := range used {
		if !emitted[f] {
			t.Errorf("%s names the response flag %s, which forward.EmittedFlags does not list (nor, then, docs/errors.md)", where, f)
		}
	}
}
