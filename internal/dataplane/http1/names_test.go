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
