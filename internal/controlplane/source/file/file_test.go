package file

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func dr(name, host string) string {
	return "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: " + name + "}\nspec:\n  host: " + host + "\n"
}

// write replaces a file atomically (a temporary file renamed over it), as editors and
// `kubectl`-style tools do: a scan never sees it half written. (A file truncated in place
// is seen empty for a moment; that is a real, different case.)
func write(t *testing.T, dir, name, content string) {
	t.Helper()
	tmp := filepath.Join(dir, name+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

func summary(objs []*config.Object, diags []config.Diagnostic) string {
	var b strings.Builder
	for _, o := range objs {
		b.WriteString(o.Key() + " host=" + o.Spec.(*networkingv1alpha3.DestinationRule).Host + "\n")
	}
	for _, d := range diags {
		b.WriteString(d.Level.String() + " " + d.String() + "\n")
	}
	return b.String()
}

func TestLastGoodRetention(t *testing.T) {
	dir := t.TempDir()
	s := New(dir, nil)
	steps := []struct {
		name  string
		files map[string]string // "" content deletes the file
		want  string
	}{
		{"initial", map[string]string{"a.yaml": dr("a", "a1") + "---\n" + dr("b", "b1"), "c.yaml": dr("c", "c1")},
			"DestinationRule default/a host=a1\nDestinationRule default/b host=b1\nDestinationRule default/c host=c1\n"},
		{"object becomes invalid: last good kept", map[string]string{"a.yaml": dr("a", "a_2") + "---\n" + dr("b", "b2")},
			"DestinationRule default/a host=a1\nDestinationRule default/b host=b2\nDestinationRule default/c host=c1\n" +
				`error a.yaml:5: DestinationRule default/a: spec.host: domain name "a_2" invalid (label "a_2" invalid)` + "\n" +
				"warning a.yaml:2: DestinationRule default/a: keeping the last good version\n"},
		{"still invalid: still kept", map[string]string{"c.yaml": dr("c", "c2")},
			"DestinationRule default/a host=a1\nDestinationRule default/b host=b2\nDestinationRule default/c host=c2\n" +
				`error a.yaml:5: DestinationRule default/a: spec.host: domain name "a_2" invalid (label "a_2" invalid)` + "\n" +
				"warning a.yaml:2: DestinationRule default/a: keeping the last good version\n"},
		{"whole file malformed: all its objects kept", map[string]string{"a.yaml": "kind: [\n"},
			"DestinationRule default/a host=a1\nDestinationRule default/b host=b2\nDestinationRule default/c host=c2\n" +
				"error a.yaml:2:1: YAML syntax error: did not find expected node content\n" +
				"warning a.yaml:2: DestinationRule default/a: keeping the last good version\n" +
				"warning a.yaml:8: DestinationRule default/b: keeping the last good version\n"},
		{"object removed from file: dropped", map[string]string{"a.yaml": dr("b", "b3")},
			"DestinationRule default/b host=b3\nDestinationRule default/c host=c2\n"},
		{"file deleted: dropped", map[string]string{"a.yaml": ""},
			"DestinationRule default/c host=c2\n"},
		{"invalid object never valid: nothing kept", map[string]string{"d.yaml": dr("d", "d_1")},
			"DestinationRule default/c host=c2\n" +
				`error d.yaml:5: DestinationRule default/d: spec.host: domain name "d_1" invalid (label "d_1" invalid)` + "\n"},
	}
	for _, st := range steps {
		for name, content := range st.files {
			if content == "" {
				if err := os.Remove(filepath.Join(dir, name)); err != nil {
					t.Fatal(err)
				}
				continue
			}
			write(t, dir, name, content)
		}
		if got := summary(s.Load()); got != st.want {
			t.Errorf("%s:\n got:\n%s\nwant:\n%s", st.name, got, st.want)
		}
	}
}

func TestRunNoticesChanges(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.yaml", dr("a", "a1"))
	s := New(dir, nil)
	s.Interval = 10 * time.Millisecond

	updates := make(chan string, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- s.Run(ctx, func(objs []*config.Object, diags []config.Diagnostic) { updates <- summary(objs, diags) })
	}()
	next := func() string {
		t.Helper()
		timer := time.NewTimer(5 * time.Second)
		defer timer.Stop()
		select {
		case u := <-updates:
			return u
		case <-timer.C:
			t.Fatal("no update within 5s")
			return ""
		}
	}
	if got, want := next(), "DestinationRule default/a host=a1\n"; got != want {
		t.Errorf("initial update %q, want %q", got, want)
	}
	write(t, dir, "a.yaml", dr("a", "a2"))
	if got, want := next(), "DestinationRule default/a host=a2\n"; got != want {
		t.Errorf("after edit %q, want %q", got, want)
	}
	// Rewriting the same content is not a change.
	write(t, dir, "a.yaml", dr("a", "a2"))
	write(t, dir, "b.yaml", dr("b", "b1"))
	if got, want := next(), "DestinationRule default/a host=a2\nDestinationRule default/b host=b1\n"; got != want {
		t.Errorf("after add %q, want %q", got, want)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run returned %v", err)
	}
	select {
	case u := <-updates:
		t.Errorf("unexpected extra update %q", u)
	default:
	}
}
