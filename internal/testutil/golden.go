package testutil

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/lucid-mesh/lucid/internal/diag/textdiff"
)

// update is the one -update flag: `go test ./internal/x -update` rewrites that package's
// golden files with what its tests produce; `git diff` then shows the change for review.
var update = flag.Bool("update", false, "rewrite golden files (testdata/) with what the tests produce")

// Updating reports whether the test run rewrites golden files.
func Updating() bool { return *update }

// Golden compares got with the golden file at path (relative to the package directory).
// With -update it writes got there instead (creating directories as needed). A difference
// fails the test with a unified diff.
func Golden(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		t.Fatalf("golden file %s does not exist: run go test -update to create it, then review it", path)
	}
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("%s differs from what the test produced (go test -update rewrites it; review with git diff):\n%s",
			path, textdiff.Unified(path, "got", string(want), string(got), 3))
	}
}
