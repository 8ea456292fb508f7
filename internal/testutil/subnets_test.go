package testutil

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var loopbackLiteral = regexp.MustCompile(`127\.0\.(\d{1,3})\.\d{1,3}`)

// TestSubnetTable: every 127.0.N.x a test file, a file of a package's testdata (fixtures
// and golden files count for the package) or the test kit names belongs to a row of
// Subnets that lists the file's package, and every row is still used by each package it
// lists, so the table stays the truth about who listens where.
func TestSubnetTable(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	used := map[byte]map[string]bool{}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if name := d.Name(); name == "bin" || strings.HasPrefix(name, ".") && rel != "." {
				return filepath.SkipDir
			}
			return nil
		}
		dir := filepath.ToSlash(filepath.Dir(rel))
		pkg, _, fixture := strings.Cut(dir+"/", "/testdata/")
		kit := strings.HasSuffix(path, ".go") && strings.HasPrefix(dir, "internal/testutil")
		if !strings.HasSuffix(path, "_test.go") && !kit && !fixture {
			return nil
		}
		if fixture {
			dir = pkg
		}
		if strings.HasPrefix(filepath.Base(path), "subnets") && dir == "internal/testutil" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range loopbackLiteral.FindAllSubmatch(b, -1) {
			n, err := strconv.Atoi(string(m[1]))
			if err != nil || n > 255 {
				continue
			}
			if used[byte(n)] == nil {
				used[byte(n)] = map[string]bool{}
			}
			used[byte(n)][dir] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rows := map[byte]SubnetUse{}
	for _, s := range Subnets {
		if _, dup := rows[s.N]; dup {
			t.Errorf("127.0.%d.0/24 has two rows in the table", s.N)
		}
		rows[s.N] = s
	}
	for n, pkgs := range used {
		row, ok := rows[n]
		for p := range pkgs {
			if !ok || !row.Any && !slices.Contains(row.Packages, p) {
				t.Errorf("%s's tests use 127.0.%d.0/24, which internal/testutil/subnets_table.go does not give it: add it to that row (shared on purpose) or pick a free subnet, e.g. 127.0.%d.0/24", p, n, FreeSubnets()[0])
			}
		}
	}
	for _, s := range Subnets {
		for _, p := range s.Packages {
			if !used[s.N][p] {
				t.Errorf("the table gives 127.0.%d.0/24 to %s, whose tests no longer use it: remove it from the row", s.N, p)
			}
		}
	}
}

func TestSubnetOfOwnPackage(t *testing.T) {
	if got := Subnet("test/hardening").String(); got != "127.0.214.0/24" {
		t.Errorf("Subnet(test/hardening) = %s, want 127.0.214.0/24", got)
	}
	if free := FreeSubnets(); len(free) == 0 || slices.ContainsFunc(Subnets, func(s SubnetUse) bool { return s.N == free[0] }) {
		t.Errorf("FreeSubnets() = %v: first one is used", free)
	}
}
