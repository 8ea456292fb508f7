package rbac

import (
	"regexp"
	"testing"
)

func TestGlobRecognisesIstioRegexes(t *testing.T) {
	for _, tc := range []struct {
		re   string
		glob bool
	}{
		{".+", true},
		{".*/ns/foo/.*", true},
		{".*/ns/ns-prefix-.*/.*", true},
		{`spiffe://.*-suffix-principal`, true},
		{`spiffe://.+/ns/foo/(.+/|)sa/sleep(/.+)?`, false},
		{`spiffe://td[^/]*/.*`, false},
		{`(?i)abc`, false},
		{`a|b`, false},
	} {
		g := compileGlob(regexp.MustCompile("^(?:" + tc.re + ")$"))
		if (g != nil) != tc.glob {
			t.Errorf("%q: glob %v, want %v", tc.re, g != nil, tc.glob)
		}
	}
}

func TestGlobMatchesLikeRegexp(t *testing.T) {
	inputs := []string{"", "a", "spiffe://cluster.local/ns/foo/sa/a", "/ns/foo/", "x/ns/foo/", "/ns/foo/x",
		"spiffe://x-suffix-principal", "spiffe://-suffix-principal", "line\n/ns/foo/x", "/ns/ns-prefix-a/b", "/ns/ns-prefix-/"}
	for _, re := range []string{".+", ".*", ".*/ns/foo/.*", ".*/ns/ns-prefix-.*/.*", "spiffe://.*-suffix-principal", "a.+b", "abc", "a.*", ".*c"} {
		full := regexp.MustCompile("^(?:" + re + ")$")
		g := compileGlob(full)
		if g == nil {
			t.Fatalf("%q: not a glob", re)
		}
		for _, in := range inputs {
			if got, want := g.match(in), full.MatchString(in); got != want {
				t.Errorf("%q on %q: glob %v, regexp %v", re, in, got, want)
			}
		}
	}
}

// FuzzGlob checks that every regex the glob takes over matches exactly as regexp does.
func FuzzGlob(f *testing.F) {
	for _, s := range []string{".+|spiffe://cluster.local/ns/a/sa/b", ".*/ns/foo/.*|x/ns/foo/y", "a.+b.*c|aXbc", "ab|ab"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		re, in, ok := cut(s)
		if !ok {
			return
		}
		full, err := regexp.Compile("^(?:" + re + ")$")
		if err != nil {
			return
		}
		g := compileGlob(full)
		if g == nil {
			return
		}
		if got, want := g.match(in), full.MatchString(in); got != want {
			t.Fatalf("%q on %q: glob %v, regexp %v", re, in, got, want)
		}
	})
}

func cut(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '|' {
			return s[:i], s[i+1:], true
		}
	}
	return "", "", false
}
