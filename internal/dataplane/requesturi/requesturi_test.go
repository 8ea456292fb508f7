package requesturi

import (
	"net/url"
	"testing"
)

// same fails unless Parse(target) and url.ParseRequestURI(target) agree on everything a
// proxy reads from the URL.
func same(t *testing.T, target string) (fast bool) {
	t.Helper()
	var slot url.URL
	got, gerr := Parse(target, &slot)
	want, werr := url.ParseRequestURI(target)
	if (gerr == nil) != (werr == nil) {
		t.Fatalf("Parse(%q) error %v, url.ParseRequestURI %v", target, gerr, werr)
	}
	if werr != nil {
		return false
	}
	g, w := *got, *want
	g.User, w.User = nil, nil // pointers: compared as text
	if g != w || got.User.String() != want.User.String() || got.EscapedPath() != want.EscapedPath() || got.RequestURI() != want.RequestURI() || got.String() != want.String() {
		t.Fatalf("Parse(%q) = %#v (escaped %q, request URI %q), url.ParseRequestURI = %#v (escaped %q, request URI %q)",
			target, *got, got.EscapedPath(), got.RequestURI(), *want, want.EscapedPath(), want.RequestURI())
	}
	return got == &slot
}

func TestAgreesWithParseRequestURI(t *testing.T) {
	for _, tc := range []struct {
		target string
		fast   bool // parsed without url.ParseRequestURI
	}{
		{"/", true},
		{"/reviews/0", true},
		{"/p/x?a=1&b=2", true},
		{"/p?", true},
		{"/p??x", true},
		{"/a:b@c;d=e,f$g&h+i~j.k_l-m", true},
		{"//double/slash", true},
		{"/Products(1)", false},
		{"/a!b'c*d", false},
		{"/a%20b", false},
		{"/a%2Fb", false},
		{"/caf\xc3\xa9", false},
		{"/a b", false},
		{"/p?q=a b", false},
		{"/p?q#frag", false},
		{"/p?q=\xff", false},
		{"http://example.com/p?q", false},
		{"*", false},
		{"example.com:443", false},
		{"", false},
		{"/\x00", false},
		{"/p?\x7f", false},
	} {
		if fast := same(t, tc.target); fast != tc.fast {
			t.Errorf("Parse(%q): parsed in place %v, want %v", tc.target, fast, tc.fast)
		}
	}
}

func TestNoAllocation(t *testing.T) {
	var u url.URL
	if n := testing.AllocsPerRun(100, func() { _, _ = Parse("/api/v1/items?page=2", &u) }); n != 0 {
		t.Errorf("%v allocations for a plain path, want 0", n)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"/", "/p?q", "/Products(1)", "/a%2F", "//x", "/p?", "*", "http://h/p"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) { same(t, target) })
}
