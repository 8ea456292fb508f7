package h2client

import (
	"net/textproto"
	"testing"
)

// An answer's field names become textproto's canonical keys, from the table or not.
func TestCanonicalKey(t *testing.T) {
	for _, l := range []string{"x-custom-field", "content-type", "server", "grpc-status", "x-envoy-upstream-service-time", "etag"} {
		if got, want := canonicalKey(l), textproto.CanonicalMIMEHeaderKey(l); got != want {
			t.Errorf("canonicalKey(%q) = %q, want %q", l, got, want)
		}
	}
}
