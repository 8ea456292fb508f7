package inject

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lucid-mesh/lucid/internal/testutil"
)

// testConfig is the configuration every golden file is injected with.
var testConfig = Config{Image: "ghcr.io/lucid-mesh/lucid:test"}

// injectFile runs kube-inject on one file and renders the reports as comments above the
// output, so the golden shows what the user is told as well as what is written.
func injectFile(t *testing.T, in []byte) []byte {
	t.Helper()
	out, reports, err := Manifests(testConfig, in)
	if err != nil {
		t.Fatalf("Manifests: %v", err)
	}
	var b bytes.Buffer
	for _, r := range reports {
		if r.Injected {
			fmt.Fprintf(&b, "# %s: injected\n", r.Object)
		} else {
			fmt.Fprintf(&b, "# %s: not injected: %s\n", r.Object, r.Reason)
		}
		for _, w := range r.Warnings {
			fmt.Fprintf(&b, "#   warning: %s\n", w)
		}
	}
	b.Write(out)
	return b.Bytes()
}

func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			in, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			got := injectFile(t, in)
			testutil.Golden(t, file+".injected", got)
		})
	}
}

// TestIdempotent injects every golden output again: nothing may change (the status
// annotation marks an injected pod).
func TestIdempotent(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			in, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			once, _, err := Manifests(testConfig, in)
			if err != nil {
				t.Fatal(err)
			}
			twice, reports, err := Manifests(testConfig, once)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(once, twice) {
				t.Errorf("injecting twice differs from injecting once:\n%s", lineDiff(string(once), string(twice)))
			}
			for _, r := range reports {
				if r.Injected {
					t.Errorf("%s injected a second time", r.Object)
				}
			}
		})
	}
}

// lineDiff shows the first differing lines, enough to see what changed.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n  want %q\n  got  %q", i+1, wl, gl)
		}
	}
	return "(equal)"
}
