package forward

import (
	"net/http"
	"net/url"
	"testing"
)

// The path recorded for the access log is url.URL.RequestURI, whatever the target's form
// (the target as received is reused only when it is exactly that).
func FuzzRecordedPath(f *testing.F) {
	for _, s := range []string{"/", "/a?b=c", "/a%2fb?", "/%41/x%20y", "http://h:1/p?q", "*", "//x/y", "/p?q#f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		r := &http.Request{URL: u, RequestURI: target}
		if got, want := recordedPath(r), u.RequestURI(); got != want {
			t.Fatalf("%q: recorded %q, RequestURI %q", target, got, want)
		}
	})
}
