package h1server

import (
	"bytes"
	"testing"
	"unsafe"
)

// A connection's next head gets the strings of the lines it repeats in the same place
// (no copy) and copies of the others: the request has the new head's values, and what
// the last request kept stays what it was although the read buffer is reused.
func TestRecalledLines(t *testing.T) {
	c := newParseConn()
	head1 := []byte("GET /a HTTP/1.1\r\nHost: svc\r\nUser-Agent: app/1\r\nX-Request-Id: 1\r\n\r\n")
	_, r1, _, why := parseState(c, head1, 16)
	if why != "" {
		t.Fatal(why)
	}
	ua1, id1 := r1.Header.Get("User-Agent"), r1.Header.Get("X-Request-Id")
	head2 := []byte("GET /b HTTP/1.1\r\nHost: svc\r\nUser-Agent: app/1\r\nX-Request-Id: 22\r\n\r\n")
	_, r2, _, why := parseState(c, head2, 16)
	if why != "" {
		t.Fatal(why)
	}
	clear(head1)
	clear(head2)
	if r2.RequestURI != "/b" || r2.URL.Path != "/b" || r2.Host != "svc" || r2.Header.Get("User-Agent") != "app/1" || r2.Header.Get("X-Request-Id") != "22" {
		t.Fatalf("second request %s %s, Host %q, fields %q", r2.RequestURI, r2.URL.Path, r2.Host, r2.Header)
	}
	if r1.RequestURI != "/a" || r1.Host != "svc" || ua1 != "app/1" || id1 != "1" {
		t.Fatalf("the first request changed: %s, Host %q, %q %q", r1.RequestURI, r1.Host, ua1, id1)
	}
	if unsafe.StringData(r2.Header.Get("User-Agent")) != unsafe.StringData(ua1) || unsafe.StringData(r2.Host) != unsafe.StringData(r1.Host) {
		t.Error("a repeated line was copied again")
	}
	// The same field in another place, a name in another case, a line cut shorter: copies.
	head3 := []byte("GET /b HTTP/1.1\r\nUser-Agent: app/1\r\nhost: svc\r\nX-Request-Id: 2\r\n\r\n")
	_, r3, _, why := parseState(c, bytes.Clone(head3), 16)
	if why != "" {
		t.Fatal(why)
	}
	if r3.Header.Get("User-Agent") != "app/1" || r3.Host != "svc" || r3.Header.Get("X-Request-Id") != "2" || r3.RequestURI != "/b" {
		t.Fatalf("third request %s, Host %q, fields %q", r3.RequestURI, r3.Host, r3.Header)
	}
	if unsafe.StringData(r3.RequestURI) != unsafe.StringData(r2.RequestURI) {
		t.Error("the repeated request line was copied again")
	}
}
