package pool

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
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

// A field line is "name: value" CRLF with any CR or LF in the value made a space (as
// net/http does), whether it is composed in the writer's free space or, too long for it,
// written piece by piece.
func TestWriteField(t *testing.T) {
	for _, size := range []int{4096, 16} { // room for the line; none (bufio's minimum is 16)
		var b bytes.Buffer
		w := bufio.NewWriterSize(&b, size)
		writeField(w, "X-A", "plain")
		writeField(w, "X-B", "bad\r\nInjected: 1")
		writeField(w, "X-Long", strings.Repeat("v", 40)+"\n")
		_ = w.Flush()
		want := "X-A: plain\r\nX-B: bad  Injected: 1\r\nX-Long: " + strings.Repeat("v", 40) + " \r\n"
		if b.String() != want {
			t.Errorf("buffer of %d: wrote %q, want %q", size, b.String(), want)
		}
	}
}

// A request whose fields are listed (RequestLister) is written with those, in their
// order, then any its header map holds, whatever room the writer has: the same bytes as a
// map holding them all would give, but for the order.
func TestWriteListedRequest(t *testing.T) {
	listed := []http1.Field{{Key: "User-Agent", Value: "u"}, {Key: "X-Long", Value: strings.Repeat("v", 40)},
		{Key: "Accept", Value: "*/*"}, {Key: "X-Empty", Value: ""}}
	for _, size := range []int{4096, 64, 16} {
		var b bytes.Buffer
		w := bufio.NewWriterSize(&b, size)
		req := &http.Request{Method: "POST", URL: &url.URL{Path: "/p"}, Host: "h",
			Header: http.Header{"X-In-The-Map": {"too"}}, Body: io.NopCloser(strings.NewReader("abc")), ContentLength: 3}
		if err := writeRequest(w, req, listed, false); err != nil {
			t.Fatal(err)
		}
		_ = w.Flush()
		want := "POST /p HTTP/1.1\r\nHost: h\r\nUser-Agent: u\r\nX-Long: " + strings.Repeat("v", 40) +
			"\r\nAccept: */*\r\nX-Empty: \r\nX-In-The-Map: too\r\nContent-Length: 3\r\n\r\nabc"
		if b.String() != want {
			t.Errorf("buffer of %d: wrote\n%q, want\n%q", size, b.String(), want)
		}
	}
}

// The request line of a listed request is the same in one copy as piece by piece: its
// target as url.URL.RequestURI gives it in every form, and a Host with a CR or LF cleaned.
func TestWriteListedHeadForms(t *testing.T) {
	listed := []http1.Field{{Key: "X-A", Value: "1"}}
	for _, host := range []string{"h", "bad\r\nInjected: 1"} {
		for _, u := range []*url.URL{
			{Path: "/"}, {Path: ""}, {Path: "/a", RawQuery: "b=c"}, {Path: "/a/b", RawPath: "/a%2fb", ForceQuery: true},
			{Path: "/A/x y"}, {Scheme: "http", Host: "h:1", Path: "/p", RawQuery: "q"}, {Path: "*"},
			{Opaque: "//x/y", Scheme: "http"}, {Opaque: "o", RawQuery: "q"},
		} {
			var one, pieces bytes.Buffer
			w := bufio.NewWriter(&one)
			req := &http.Request{Method: "GET", URL: u, Host: host, Body: http.NoBody}
			if err := writeRequest(w, req, listed, false); err != nil {
				t.Fatal(err)
			}
			_ = w.Flush()
			w = bufio.NewWriterSize(&pieces, 16) // no room for the head in one copy
			if err := writeRequest(w, req, listed, false); err != nil {
				t.Fatal(err)
			}
			_ = w.Flush()
			want := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + strings.NewReplacer("\r", " ", "\n", " ").Replace(host) + "\r\nX-A: 1\r\n\r\n"
			if one.String() != want || pieces.String() != want {
				t.Errorf("%#v, Host %q: wrote\n%q in one copy,\n%q piece by piece; want\n%q", u, host, one.String(), pieces.String(), want)
			}
		}
	}
}
