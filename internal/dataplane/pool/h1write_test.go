package pool

import (
	"bufio"
	"bytes"
	"net/url"
	"testing"
)

// The request line's target is written exactly as url.URL.RequestURI gives it, in every
// form a target takes (escapes, empty and forced queries, absolute form, opaque, '*').
func TestWriteRequestURI(t *testing.T) {
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	for _, u := range []*url.URL{
		{Path: "/"}, {Path: ""}, {Path: "/a", RawQuery: "b=c"}, {Path: "/a/b", RawPath: "/a%2fb", ForceQuery: true},
		{Path: "/A/x y"}, {Scheme: "http", Host: "h:1", Path: "/p", RawQuery: "q"}, {Path: "*"},
		{Opaque: "//x/y", Scheme: "http"}, {Opaque: "o", RawQuery: "q"},
	} {
		b.Reset()
		writeRequestURI(w, u)
		_ = w.Flush()
		if b.String() != u.RequestURI() {
			t.Errorf("%#v: wrote %q, RequestURI %q", u, b.String(), u.RequestURI())
		}
	}
}
