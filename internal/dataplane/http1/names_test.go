package http1

import (
	"net/textproto"
	"strings"
	"testing"
)

// Both directions of the table agree with net/textproto, and with each other.
func TestNameTable(t *testing.T) {
	if len(canonicalOf) != len(lowerOf) || len(canonicalOf) == 0 {
		t.Fatalf("%d lower-case names, %d canonical keys", len(canonicalOf), len(lowerOf))
	}
	for l, k := range canonicalOf {
		if want := textproto.CanonicalMIMEHeaderKey(l); k != want || l != strings.ToLower(l) {
			t.Errorf("%q maps to %q, textproto says %q", l, k, want)
		}
		if back, ok := LowerName(k); !ok || back != l {
			t.Errorf("LowerName(%q) = %q, %v; want %q", k, back, ok, l)
		}
	}
	if _, ok := CanonicalName("x-not-in-the-table"); ok {
		t.Error("a name outside the table was found")
	}
}

// A field name becomes textproto's canonical key, from the table or not, as a string or
// as bytes, whatever its case; a name that is not a token stays as it is.
func TestCanonicalKey(t *testing.T) {
	for _, l := range []string{"x-custom-field", "content-type", "CONTENT-TYPE", "server", "grpc-status",
		"x-envoy-upstream-service-time", "etag", "X-FORWARDED-HOST", "x_under", "a b", "x-\u00e9", strings.Repeat("x-long", 20)} {
		want := textproto.CanonicalMIMEHeaderKey(l)
		if got := CanonicalKey(l); got != want {
			t.Errorf("CanonicalKey(%q) = %q, want %q", l, got, want)
		}
		if got := CanonicalKey([]byte(l)); got != want {
			t.Errorf("CanonicalKey([]byte(%q)) = %q, want %q", l, got, want)
		}
	}
}

func FuzzCanonicalKey(f *testing.F) {
	for _, s := range []string{"content-type", "X-Custom", "a b", "x_y", "Ö"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := CanonicalKey(s), textproto.CanonicalMIMEHeaderKey(s); got != want {
			t.Fatalf("CanonicalKey(%q) = %q, want %q", s, got, want)
		}
	})
}
