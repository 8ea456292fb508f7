package pathtemplate

import (
	"regexp"
	"strings"
	"testing"
)

func TestCompile(t *testing.T) {
	for _, tc := range []struct {
		tmpl    string
		matches []string
		misses  []string
	}{
		{"/api/*/items", []string{"/api/v1/items"}, []string{"/api//items", "/api/a/b/items", "/api/v1/items/"}},
		{"/files/**/raw", []string{"/files/a/b/raw", "/files//raw"}, []string{"/files/raw"}},
		{"/docs/**", []string{"/docs/", "/docs/a/b.md"}, []string{"/docs"}},
		{"/*.txt", []string{"/a.txt"}, []string{"/a/b.txt", "/.txt"}},
		{"/a/b/", []string{"/a/b/"}, []string{"/a/b"}},
	} {
		re, err := Compile(tc.tmpl)
		if err != nil {
			t.Fatalf("%s: %v", tc.tmpl, err)
		}
		checkMatches(t, tc.tmpl, re, tc.matches, tc.misses)
	}
	for _, bad := range []string{"api/*", "/a/**/*", "/a b", "/a/{x}", "/a/*x/b"} {
		if _, err := Compile(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// FuzzCompile: the template compiler never panics, and an accepted template's regex
// only matches paths that start with '/'.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{"/api/*/items", "/**", "/*.txt", "/a/**/b", "/{x}", "//", "/a/b/"} {
		f.Add(s, "/api/x/items")
	}
	f.Fuzz(func(t *testing.T, tmpl, path string) {
		re, err := Compile(tmpl)
		if err != nil {
			return
		}
		if re.MatchString(path) && !strings.HasPrefix(path, "/") {
			t.Fatalf("%q matches %q", tmpl, path)
		}
	})
}

// TestIstioRegexp: a template a uri_template can carry matches the same paths as that
// uri_template; one it cannot carry keeps its segments as written.
func TestIstioRegexp(t *testing.T) {
	paths := []string{"/", "//", "/a", "/a/", "/a/b", "/a/b/c", "//a", "/a//", "/files/x/raw", "/files/raw", "files/x/raw", "/x.txt"}
	for _, istio := range []string{"/{*}", "/{**}", "/a/{*}", "/a/{**}", "/files/{**}/raw", "/{*}/b/", "/a/{*}/{*}"} {
		tmpl, ok := URITemplate(istio)
		if !ok {
			t.Fatalf("%s: does not fit a uri_template", istio)
		}
		envoy, err := Compile(tmpl)
		if err != nil {
			t.Fatalf("%s: %v", istio, err)
		}
		ours := regexp.MustCompile(IstioRegexp(istio))
		for _, p := range paths {
			if envoy.MatchString(p) != ours.MatchString(p) {
				t.Errorf("%s on %s: uri_template %v, IstioRegexp %v", istio, p, envoy.MatchString(p), ours.MatchString(p))
			}
		}
	}
	for _, tc := range []struct {
		istio           string
		matches, misses []string
	}{
		{"{**}", []string{"/", "/a", "//"}, nil},
		{"{**}/raw", []string{"/raw", "/a/b/raw"}, []string{"/a/raw/x"}},
		{"{*}/raw", nil, []string{"/raw", "/a/raw"}},
		{"files/{*}/raw", nil, []string{"/files/x/raw", "files/x/raw/"}},
		{"//{*}", []string{"//a"}, []string{"/a", "//", "///a"}},
		{"/{*}//", []string{"/a//"}, []string{"/a/", "/a"}},
	} {
		if _, ok := URITemplate(tc.istio); ok {
			t.Errorf("%s fits a uri_template; Envoy refuses it", tc.istio)
		}
		re := regexp.MustCompile(IstioRegexp(tc.istio))
		checkMatches(t, tc.istio, re, tc.matches, tc.misses)
	}
}

func checkMatches(t *testing.T, tmpl string, re *regexp.Regexp, matches, misses []string) {
	t.Helper()
	for _, p := range matches {
		if !re.MatchString(p) {
			t.Errorf("%s does not match %s", tmpl, p)
		}
	}
	for _, p := range misses {
		if re.MatchString(p) {
			t.Errorf("%s matches %s", tmpl, p)
		}
	}
}
