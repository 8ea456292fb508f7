package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// analyzeCmd runs `lucid analyze` and returns its standard output, its standard error
// (with the error Main would print) and its exit status.
func analyzeCmd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	root := NewRoot()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"analyze"}, args...))
	err := root.Execute()
	var ec exitCoder
	switch {
	case err == nil:
	case errors.As(err, &ec):
		code = ec.ExitCode()
	default:
		errOut.WriteString("lucid: " + err.Error() + "\n")
		code = 1
	}
	return out.String(), errOut.String(), code
}

// TestAnalyzeGolden: istioctl's log format (Kind namespace/name, file:line of the field),
// files named as given, the default ingress gateway announced, and exit statuses.
func TestAnalyzeGolden(t *testing.T) {
	dir := filepath.Join("testdata", "analyze")
	for _, tc := range []struct {
		name string
		args []string
		exit int
	}{
		{"file", []string{"-f", filepath.Join(dir, "reviews.yaml")}, 79},
		{"file-json", []string{"-f", filepath.Join(dir, "reviews.yaml"), "-o", "json"}, 79},
		{"file-yaml", []string{"-f", filepath.Join(dir, "gateway.yaml"), "-o", "yaml"}, 0},
		{"default-ingress", []string{"-f", filepath.Join(dir, "gateway.yaml")}, 0},
		{"syntax-error", []string{"-f", filepath.Join(dir, "syntax.yaml")}, 79},
		{"namespace", []string{"-f", dir, "-n", "shop"}, 79},
		{"missing-path", []string{"-f", "does-not-exist"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := analyzeCmd(t, tc.args...)
			if code != tc.exit {
				t.Errorf("exit %d, want %d:\n%s%s", code, tc.exit, out, errOut)
			}
			golden(t, filepath.Join("analyze", tc.name), "stdout:\n"+out+"stderr:\n"+errOut)
		})
	}
}

// TestAnalyzeMissingPathIsUsageError: a path that does not exist is a bad invocation (exit
// 1, a plain message), not a configuration error (79, IST0106).
func TestAnalyzeMissingPathIsUsageError(t *testing.T) {
	out, errOut, code := analyzeCmd(t, "-f", "does-not-exist")
	if code != 1 || out != "" || strings.Contains(errOut, "IST0106") || !strings.Contains(errOut, "does-not-exist: no such file or directory") {
		t.Errorf("exit %d:\n%s%s", code, out, errOut)
	}
	if code := Main([]string{"analyze", "-f", "does-not-exist"}); code != 1 {
		t.Errorf("Main: exit %d, want 1", code)
	}
}

// TestAnalyzeJSONKeys: -o json has istioctl's keys, so scripts written for istioctl read it.
func TestAnalyzeJSONKeys(t *testing.T) {
	out, _, _ := analyzeCmd(t, "-f", filepath.Join("testdata", "analyze"), "-o", "json")
	var msgs []map[string]any
	if err := json.Unmarshal([]byte(out), &msgs); err != nil {
		t.Fatalf("not a JSON array: %v\n%s", err, out)
	}
	if len(msgs) == 0 {
		t.Fatal("no messages")
	}
	var codes []string
	for _, m := range msgs {
		keys := []string{"code", "documentationUrl", "level", "message", "reference"}
		if m["kind"] != nil {
			keys = append(keys, "origin") // as istioctl: no origin for a message about no object
		}
		for _, k := range keys {
			if _, ok := m[k].(string); !ok {
				t.Errorf("message lacks istioctl's key %q: %v", k, m)
			}
		}
		origin, _ := m["origin"].(string)
		ref, _ := m["reference"].(string)
		codes = append(codes, m["code"].(string)+" "+origin+" "+ref)
	}
	want := "IST0173 DestinationRule default/reviews " + filepath.ToSlash(filepath.Join("testdata", "analyze", "reviews.yaml")) + ":39"
	if !slices.Contains(codes, want) {
		t.Errorf("want %q among %q", want, codes)
	}
}
