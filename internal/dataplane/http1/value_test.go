package http1

import (
	"net/textproto"
	"testing"

	"golang.org/x/net/http/httpguts"
)

// NameForm and ValidName agree with httpguts on what a field name is, and with net/textproto on which
// names are already canonical.
func FuzzNameForm(f *testing.F) {
	for _, s := range []string{"Content-Type", "content-type", "ETag", "X-Envoy-Peer-Metadata", "x", "X-", "-a", "A b", "", "Ö", "Foo_Bar", "FOO"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		token, canonical := NameForm([]byte(s))
		if want := httpguts.ValidHeaderFieldName(s); token != want || ValidName(s) != want {
			t.Fatalf("%q: NameForm's token %v, ValidName %v, want %v", s, token, ValidName(s), want)
		}
		if !token {
			return
		}
		if want := textproto.CanonicalMIMEHeaderKey(s) == s; canonical != want {
			t.Fatalf("%q: canonical %v, want %v", s, canonical, want)
		}
	})
}
