package h2client

import (
	"net/textproto"
	"testing"
)

// The names an answer's fields are looked up by are textproto's canonical keys, and a
// name outside the table is canonicalised as textproto does.
func TestCanonicalKey(t *testing.T) {
	for l, k := range commonCanonical {
		if want := textproto.CanonicalMIMEHeaderKey(l); k != want {
			t.Errorf("%q maps to %q, textproto says %q", l, k, want)
		}
	}
	for _, l := range []string{"x-custom-field", "content-type", "server", "grpc-status", "x-envoy-upstream-service-time"} {
		if got, want := canonicalKey(l), textproto.CanonicalMIMEHeaderKey(l); got != want {
			t.Errorf("canonicalKey(%q) = %q, want %q", l, got, want)
		}
	}
}
