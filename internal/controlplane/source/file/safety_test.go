package file

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// step is one change to the directory and what Load must then return.
type step struct {
	name string
	do   func(t *testing.T, dir string)
	want string // summary(): objects, then diagnostics
}

func runSteps(t *testing.T, dir string, steps []step) {
	t.Helper()
	s := New(dir, nil)
	for _, st := range steps {
		st.do(t, dir)
		if got := summary(s.Load()); got != st.want {
			t.Errorf("%s:\n got:\n%s\nwant:\n%s", st.name, got, st.want)
		}
	}
}

func writes(files map[string]string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		for name, body := range files {
			write(t, dir, name, body)
		}
	}
}

func TestDirectoryGoneKeepsEverything(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "config")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	both := "DestinationRule default/a host=a1\nDestinationRule default/b host=b1\n"
	runSteps(t, dir, []step{
		{"initial", writes(map[string]string{"a.yaml": dr("a", "a1"), "b.yaml": dr("b", "b1")}), both},
		{"directory deleted", func(t *testing.T, dir string) {
			t.Helper()
			if err := os.Rename(dir, dir+".moved"); err != nil {
				t.Fatal(err)
			}
		}, both + "error cannot read config directory: lstat " + dir + ": no such file or directory\n" +
			"warning " + dir + ": keeping the last good configuration (2 objects) until the directory can be read again\n"},
		{"directory restored", func(t *testing.T, dir string) {
			t.Helper()
			if err := os.Rename(dir+".moved", dir); err != nil {
				t.Fatal(err)
			}
		}, both},
		{"then a real deletion of a file still applies", func(t *testing.T, dir string) {
			t.Helper()
			if err := os.Remove(filepath.Join(dir, "b.yaml")); err != nil {
				t.Fatal(err)
			}
		}, "DestinationRule default/a host=a1\n"},
	})
}

func TestUnreadableFileKeepsItsObjects(t *testing.T) {
	dir := t.TempDir()
	runSteps(t, dir, []step{
		{"initial", writes(map[string]string{"a.yaml": dr("a", "a1"), "b.yaml": dr("b", "b1")}),
			"DestinationRule default/a host=a1\nDestinationRule default/b host=b1\n"},
		{"b.yaml unreadable", func(t *testing.T, dir string) {
			t.Helper()
			// A dangling symlink cannot be read, even by root (who ignores permissions).
			p := filepath.Join(dir, "b.yaml")
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(dir, "nowhere"), p); err != nil {
				t.Fatal(err)
			}
		}, "DestinationRule default/a host=a1\nDestinationRule default/b host=b1\n" +
			"error b.yaml: cannot read: open " + filepath.Join(dir, "b.yaml") + ": no such file or directory\n" +
			"warning b.yaml: keeping this file's last good objects until it can be read again\n"},
		{"readable again", func(t *testing.T, dir string) {
			t.Helper()
			p := filepath.Join(dir, "b.yaml")
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			write(t, dir, "b.yaml", dr("b", "b2"))
		}, "DestinationRule default/a host=a1\nDestinationRule default/b host=b2\n"},
	})
}

func TestTruncatedFileKeepsItsObjects(t *testing.T) {
	dir := t.TempDir()
	full := dr("a", "a1") + "---\n" + dr("b", "b1") + "---\n" + dr("c", "c1")
	cut := full[:strings.Index(full, "kind: DestinationRule\nmetadata: {name: b}")+len("kind: DestinationRule\nmeta")]
	all := "DestinationRule default/a host=a1\nDestinationRule default/b host=b1\nDestinationRule default/c host=c1\n"
	runSteps(t, dir, []step{
		{"initial", writes(map[string]string{"a.yaml": full}), all},
		{"cut in the middle of a line", writes(map[string]string{"a.yaml": cut}), all +
			"error a.yaml:9: the file ends in the middle of line 9 (no newline at the end) and no longer defines " +
			"[DestinationRule default/b DestinationRule default/c]: truncated, or still being written? " +
			"keeping this file's last good objects until it ends with a newline\n"},
		{"complete again, with an edit", writes(map[string]string{"a.yaml": strings.Replace(full, "c1", "c2", 1)}),
			"DestinationRule default/a host=a1\nDestinationRule default/b host=b1\nDestinationRule default/c host=c2\n"},
		{"emptied, as a rewrite in place is for a moment", writes(map[string]string{"a.yaml": ""}),
			"DestinationRule default/a host=a1\nDestinationRule default/b host=b1\nDestinationRule default/c host=c2\n" +
				"error a.yaml: the file is empty and no longer defines [DestinationRule default/a DestinationRule default/b DestinationRule default/c]: " +
				"still being written? keeping this file's last good objects until it has content again, or remove the file to remove them\n"},
		{"written again", writes(map[string]string{"a.yaml": strings.Replace(full, "c1", "c2", 1)}),
			"DestinationRule default/a host=a1\nDestinationRule default/b host=b1\nDestinationRule default/c host=c2\n"},
		{"a last document without a final newline that loses nothing is read as it is",
			writes(map[string]string{"a.yaml": strings.TrimSuffix(strings.Replace(full, "c1", "c3", 1), "\n")}),
			"DestinationRule default/a host=a1\nDestinationRule default/b host=b1\nDestinationRule default/c host=c3\n"},
	})
}

func TestDuplicateAcrossFiles(t *testing.T) {
	// The definition serving wins, whichever name the newcomer's file sorts at.
	for _, newcomer := range []string{"a-dup.yaml", "z-dup.yaml"} {
		t.Run(newcomer, func(t *testing.T) {
			dir := t.TempDir()
			runSteps(t, dir, []step{
				{"initial", writes(map[string]string{"m.yaml": dr("reviews", "good")}), "DestinationRule default/reviews host=good\n"},
				{"a second definition in a new file", writes(map[string]string{newcomer: dr("reviews", "bad")}),
					"DestinationRule default/reviews host=good\n" +
						"error " + newcomer + ":2: DestinationRule default/reviews: duplicate object: DestinationRule default/reviews is already defined at m.yaml:2, " +
						"which wins (the definition already serving is kept); this definition is rejected\n"},
				{"the newcomer removed", func(t *testing.T, dir string) {
					t.Helper()
					if err := os.Remove(filepath.Join(dir, newcomer)); err != nil {
						t.Fatal(err)
					}
				}, "DestinationRule default/reviews host=good\n"},
			})
		})
	}
	t.Run("neither serving: the first in file order", func(t *testing.T) {
		runSteps(t, t.TempDir(), []step{
			{"both at once", writes(map[string]string{"b.yaml": dr("r", "b"), "a.yaml": dr("r", "a")}),
				"DestinationRule default/r host=a\n" +
					"error b.yaml:2: DestinationRule default/r: duplicate object: DestinationRule default/r is already defined at a.yaml:2, " +
					"which wins (the definition already serving is kept); this definition is rejected\n"},
		})
	})
}

// The watch loop removes a file's objects only when the file is still missing at the
// next scan: git checkout replaces a file by unlinking it and creating it again.
func TestVanishedFileConfirmedOnNextScan(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.yaml", dr("a", "a1"))
	write(t, dir, "b.yaml", dr("b", "b1"))
	s := New(dir, nil)
	s.Load()
	both := "DestinationRule default/a host=a1\nDestinationRule default/b host=b1\n"
	scan := func(step, want string) {
		t.Helper()
		objs, diags, changed := s.rescan()
		if !changed {
			t.Fatalf("%s: the scan applied nothing", step)
		}
		if got := summary(objs, diags); got != want {
			t.Errorf("%s:\n got:\n%s\nwant:\n%s", step, got, want)
		}
	}
	if err := os.Remove(filepath.Join(dir, "b.yaml")); err != nil {
		t.Fatal(err)
	}
	scan("missing once", both)
	write(t, dir, "b.yaml", dr("b", "b2"))
	scan("back, changed", "DestinationRule default/a host=a1\nDestinationRule default/b host=b2\n")
	if err := os.Remove(filepath.Join(dir, "b.yaml")); err != nil {
		t.Fatal(err)
	}
	scan("missing once more", "DestinationRule default/a host=a1\nDestinationRule default/b host=b2\n")
	scan("still missing: removed", "DestinationRule default/a host=a1\n")
	if _, _, changed := s.rescan(); changed {
		t.Error("a scan after the removal applied again with nothing changed")
	}
}
