package h1server

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// The names of an answer's fields found valid are remembered (copied): a name is valid
// when http1.ValidName says so, whether the cache holds it (the fast way) or not; an
// invalid name, or an empty one, never passes, however often it comes and whatever the
// cache holds; a name longer than a slot is checked each time; remembering costs no
// allocation.
func TestNameCache(t *testing.T) {
	var nc nameCache
	own := "X-Envoy-Upstream-Service-Time"
	long := strings.Repeat("X-Long-Name-", 4)
	for range 3 {
		if !nc.valid(own) || !nc.valid(strings.Clone(own)) || !nc.valid(long) {
			t.Fatal("a valid name refused")
		}
	}
	for _, k := range []string{"", "X A", "X-A\r\n", "X:A", own[:len(own)-1] + " ", long + " "} {
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
	if !nc.valid(own) {
		t.Fatal("a valid name refused after the cache turned over")
	}
	names := []string{"X-A", "X-B", "X-C", "X-D", "X-E"}
	if n := testing.AllocsPerRun(100, func() {
		for _, k := range names {
			nc.valid(k)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per answer", n)
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
