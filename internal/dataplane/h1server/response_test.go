package h1server

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// The names an answer's fields are checked by are remembered by address: a name is valid
// when http1.ValidName says so, whether it is a string seen before (the fast way) or a
// copy of one; an invalid name, or an empty one, never passes, however often it comes and
// whatever the cache holds.
func TestNameCache(t *testing.T) {
	var nc nameCache
	own := "X-Envoy-Upstream-Service-Time"
	for range 3 {
		if !nc.valid(own) {
			t.Fatal("a valid name refused")
		}
	}
	for _, k := range []string{"", "X A", "X-A\r\n", "X:A", strings.Clone(own)[:0]} {
		for range 2 {
			if nc.valid(k) {
				t.Fatalf("%q taken for a valid name", k)
			}
		}
	}
	for i := range 10 { // more names than the cache holds, then the first again
		if k := "X-" + strconv.Itoa(i); !nc.valid(k) {
			t.Fatalf("%q refused", k)
		}
	}
	if !nc.valid(own) || !nc.valid(strings.Clone(own)) {
		t.Fatal("a valid name refused after the cache turned over")
	}
}

// The status line of every code, HTTP/1.0 and 1.1, the 200 of HTTP/1.1 (written without
// formatting) included: the version, the code and net/http's text.
func TestStatusLine(t *testing.T) {
	for _, minor := range []int{0, 1} {
		for code := 100; code < 600; code++ {
			want := "HTTP/1." + strconv.Itoa(minor) + " " + strconv.Itoa(code) + " " + http.StatusText(code) + "\r\n"
			if got := string(appendStatusLine([]byte("x"), minor, code)); got != "x"+want {
				t.Fatalf("%q, want %q", got, "x"+want)
			}
		}
	}
}
