package pathnorm

import (
	"strings"
	"testing"
)

// Envoy's own vectors (test/common/http/path_utility_test.cc) for normalize_path.
func TestCanonicalPathEnvoyVectors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/xyz", "/xyz"},
		{"/x/y/z", "/x/y/z"},
		{"/a/b/../c", "/a/c"},
		{"/a/b/./c", "/a/b/c"},
		{"a/b/../c", "/a/c"},
		{"/a/b/../../../../c", "/c"},
		{`/a/..\c`, "/c"},
		{"/%c0%af", "/%c0%af"},
		{"/%5c%25", "/%5c%25"},
		{"/a/b/%2E%2E/c", "/a/c"},
		{"/a/b/%2e%2e/c", "/a/c"},
		{"/a/b/%2E./c", "/a/c"},
		{"/a/b/%2E/c", "/a/b/c"},
		{"..", "/"},
		{"/../a/b", "/a/b"},
		{"/./a/b", "/a/b"},
		{"/A/B/C", "/A/B/C"},
		{"/a/%2F%2f/c", "/a/%2F%2f/c"},
		{"/xyz/..;foo=bar/abc", "/abc"},
		{"/..;foo=bar/abc", "/abc"},
		{"/xyz/..;foo=bar", "/"},
		{"/xyz/.;foo=bar/abc", "/xyz/abc"},
		{"/.;foo=bar/abc", "/abc"},
		{"/xyz/.;foo=bar", "/xyz/"},
		{"/xyz/..;foo=bar/.;v1=2,v2=3/abc", "/abc"},
		{"/..;foo=bar/abc/.;mmm", "/abc/"},
		{"/%2e%2e;/admin", "/admin"}, // a dot segment with parameters that decoding reveals (Lucid, not Envoy)
		{"/%2e;", "/"},
		{"/xyz/..;foo=bar/.;fff=zzz?blah=woops", "/?blah=woops"},
		{"/xyz/..;foo=bar/.;fff=zzz/remain;blah-bluh?query", "/remain;blah-bluh?query"},
		{"", "/"},
		{"/a/b/..", "/a/"},
		{"/a/b/.", "/a/b/"},
		{"/a.b/.c/..d", "/a.b/.c/..d"},
		{"/%41%62%2d%5f%7e%30", "/Ab-_~0"},
		{"/a b", "/a%20b"},
		{"/\x80", "/%80"},
		{"/%zz/%4", "/%zz/%4"},
		{"/a/../b?x=/../y", "/b?x=/../y"},
	} {
		got, ok := canonicalPath(tc.in)
		if !ok || got != tc.want {
			t.Errorf("canonicalPath(%q) = %q, %v; want %q, true", tc.in, got, ok, tc.want)
		}
	}
	for _, in := range []string{"/xyz/.%00../abc", "/xyz/%00.%00./abc", "/xyz/AAAAA%%0000/abc", "/\x00"} {
		if got, ok := canonicalPath(in); ok {
			t.Errorf("canonicalPath(%q) = %q, accepted; Envoy rejects it", in, got)
		}
	}
}

func TestMergeSlashesEnvoyVectors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"a//b/c", "a/b/c"},
		{"/a//b/c/", "/a/b/c/"},
		{"a//b/c/", "a/b/c/"},
		{"/a", "/a"},
		{"//a/b/c", "/a/b/c"},
		{"/a//b/c", "/a/b/c"},
		{"/a/b/c//", "/a/b/c/"},
		{"/a///b/c", "/a/b/c"},
		{"/a////b/c", "/a/b/c"},
		{"/a//b?a=///c", "/a/b?a=///c"},
		{"/a//b?", "/a/b?"},
		{"//a/?b", "/a/?b"},
	} {
		if got := mergeSlashes(tc.in); got != tc.want {
			t.Errorf("mergeSlashes(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestUnescapeSlashesEnvoyVectors(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		found    bool
	}{
		{"", "", false},
		{"%2f%2F", "//", true},
		{"/a%2Fb%2fc/", "/a/b/c/", true},
		{"%2b", "%2b", false},
		{"/a/b/c", "/a/b/c", false},
		{"%2", "%2", false},
		{"%", "%", false},
		{"/abc%2", "/abc%2", false},
		{"/a%2F", "/a/", true},
		{"%2fa/", "/a/", true},
		{"%%2fa/", "%/a/", true},
		{"%2%2fa/", "%2/a/", true},
		{"%5c%5C", `\\`, true},
		{"/x/%2E%2e/z%2f%2Fabc%5C../def", `/x/%2E%2e/z//abc\../def`, true},
		{"%2fa%5Cb%2fc%5c?%2fabcd%5C%%2f%", `/a\b/c\?%2fabcd%5C%%2f%`, true},
	} {
		got, found := unescapeSlashes(tc.in)
		if got != tc.want || found != tc.found {
			t.Errorf("unescapeSlashes(%q) = %q, %v; want %q, %v", tc.in, got, found, tc.want, tc.found)
		}
	}
}

// TestIstioBypassForms runs every form Istio's security best practices and its
// "Authorization Policy Normalization" reference list through the mode that defends
// against it, and shows the mode that does not.
func TestIstioBypassForms(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		mode     Mode
		want     string
		action   Action
	}{
		{"dot-dot segment", "/a/../b", Base, "/b", Continue},
		{"dot-dot back into a protected path", "/public/../admin", Base, "/admin", Continue},
		{"dot segments", "/public/./data/abc/../xyz", Base, "/public/data/xyz", Continue},
		{"encoded dot-dot", "/public/%2e%2e/admin", Base, "/admin", Continue},
		{"mixed encoded dot-dot", "/public/.%2E/admin", Base, "/admin", Continue},
		{"dot-dot with parameters", "/public/..;/admin", Base, "/admin", Continue},
		{"backslash", `\da`, Base, "/da", Continue},
		{"backslash separator", `/some\data`, Base, "/some/data", Continue},
		{"backslash dot-dot", `/public\..\admin`, Base, "/admin", Continue},
		{"encoded letters", "/%61%64%6d%69%6e", Base, "/admin", Continue},
		{"encoded unreserved", "/a%2db%5fc%7ed%30", Base, "/a-b_c~d0", Continue},
		{"escaped NUL", "/admin%00", Base, "", Reject},
		{"fragment", "/public#/../admin", Base, "", Reject},
		{"double slash kept by BASE", "/a//b", Base, "/a//b", Continue},
		{"double slash", "/a//b", MergeSlashes, "/a/b", Continue},
		{"many slashes", "/some//data///abc", MergeSlashes, "/some/data/abc", Continue},
		{"leading double slash", "//admin", MergeSlashes, "/admin", Continue},
		{"encoded slash kept by MERGE_SLASHES", "/a%2fb", MergeSlashes, "/a%2fb", Continue},
		{"encoded slash", "/a%2fb", DecodeAndMergeSlashes, "/a/b", Continue},
		{"encoded slash upper case", "/admin%2Fsecret", DecodeAndMergeSlashes, "/admin/secret", Continue},
		{"encoded backslash", "/admin%5csecret", DecodeAndMergeSlashes, "/admin/secret", Continue},
		{"encoded slash and letters", "/some%2fdata/%61%62%63", DecodeAndMergeSlashes, "/some/data/abc", Continue},
		{"encoded slash doubled", "/a%2f%2fb", DecodeAndMergeSlashes, "/a/b", Continue},
		{"encoded slash dot-dot", "/public%2f..%2fadmin", DecodeAndMergeSlashes, "/admin", Continue},
		{"query untouched", "/foo/../bar?v=/../x", Base, "/bar?v=/../x", Continue},
		{"NONE keeps everything", "../%2Fa../b", None, "../%2Fa../b", Continue},
		{"NONE keeps dot-dot", "/public/../admin", None, "/public/../admin", Continue},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, action := Normalize(tc.in, ForMode(tc.mode))
			if action != tc.action {
				t.Fatalf("Normalize(%q) action %v, want %v", tc.in, action, tc.action)
			}
			if action == Continue && got != tc.want {
				t.Errorf("Normalize(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestEscapedSlashesActions(t *testing.T) {
	o := Options{NormalizePath: true, EscapedSlashes: RejectRequest}
	if _, a := Normalize("/a%2Fb", o); a != Reject || a.Status(false) != 400 {
		t.Errorf("REJECT_REQUEST: action %v status %d, want Reject 400", a, a.Status(false))
	}
	o.EscapedSlashes = UnescapeAndRedirect
	p, a := Normalize("/a%2Fb/../c?q", o)
	if a != Redirect || p != "/a/c?q" || a.Status(false) != 307 || a.Status(true) != 400 {
		t.Errorf("UNESCAPE_AND_REDIRECT: %q %v (status %d, gRPC %d), want /a/c?q Redirect 307, gRPC 400", p, a, a.Status(false), a.Status(true))
	}
	if p, a := Normalize("/a/b", o); a != Continue || p != "/a/b" {
		t.Errorf("no escaped slash: %q %v, want unchanged Continue", p, a)
	}
	if _, a := Normalize("/a%2Fb", Options{}); a != Continue {
		t.Errorf("KEEP_UNCHANGED: %v", a)
	}
}

func TestStrip(t *testing.T) {
	for in, want := range map[string]string{"/abc": "/abc", "/abc?": "/abc", "/abc?a=b#f": "/abc", "/abc#f?x": "/abc", "": ""} {
		if got := Strip(in); got != want {
			t.Errorf("Strip(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNormalizeUnchangedDoesNotAllocate(t *testing.T) {
	o := ForMode(DecodeAndMergeSlashes)
	path := "/api/v1/reviews/0?user=jason&x=%2F"
	n := testing.AllocsPerRun(100, func() {
		if got, _ := Normalize(path, o); got != path {
			t.Fatal("changed")
		}
	})
	if n != 0 {
		t.Errorf("%v allocations for a path that needs no change", n)
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"/a/../b", `\da`, "/a//b", "/a%2fb", "/%2e%2e/x", "/x/..;y/z", "/%00", "..", "/a?b/../c", "/%%32e", "/a#b"} {
		f.Add(s, uint8(0))
		f.Add(s, uint8(3))
	}
	f.Fuzz(func(t *testing.T, in string, mode uint8) {
		o := ForMode(Mode(mode % 4))
		out, action := Normalize(in, o)
		if action != Continue || !o.NormalizePath {
			return
		}
		p, _ := splitQuery(out)
		if !strings.HasPrefix(p, "/") {
			t.Fatalf("Normalize(%q) = %q: path does not start with /", in, out)
		}
		if strings.ContainsRune(p, '\\') {
			t.Fatalf("Normalize(%q) = %q: backslash left", in, out)
		}
		for seg := range strings.SplitSeq(p, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("Normalize(%q) = %q: dot segment left", in, out)
			}
		}
		if o.MergeSlashes && strings.Contains(p, "//") && p != "//" {
			t.Fatalf("Normalize(%q) = %q: slashes not merged", in, out)
		}
		if _, q := splitQuery(in); !strings.HasSuffix(out, q) {
			t.Fatalf("Normalize(%q) = %q: query %q changed", in, out, q)
		}
	})
}
