package h1server

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// byteConn is a connection whose client sent b and then closed.
type byteConn struct {
	net.Conn
	r *bytes.Reader
}

func (c byteConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// FuzzRequest reads arbitrary bytes as a request head and its body, as the loop does:
// nothing panics, an accepted head gives a request a handler can use, and the body reader
// never returns more bytes than were sent after the head.
func FuzzRequest(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /p?q=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: T\r\n\r\n3;e=1\r\nabc\r\n0\r\nT: v\r\n\r\n",
		"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
		"GET http://a/b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		end := bytes.Index(in, []byte("\r\n\r\n"))
		if end < 0 {
			return
		}
		end += 4
		c := newParseConn()
		c.rwc = byteConn{r: bytes.NewReader(in[end:])}
		req, rb, why := parseWith(c, in[:end], 2) // room for 2 values: both ways
		if why != "" {
			if req != nil || rb != nil {
				t.Fatalf("refused (%s) with a request", why)
			}
			return
		}
		if req.Method == "" || req.URL == nil || req.Header == nil || req.Body == nil {
			t.Fatalf("accepted head gave an unusable request: %+v", req)
		}
		if _, ok := req.Header["Host"]; ok {
			t.Fatal("Host left in the header map (net/http moves it to Request.Host)")
		}
		if rb == nil {
			if req.Body != http.NoBody {
				t.Fatal("no body reader, but a body")
			}
			return
		}
		rb.w = &response{c: c, req: req, header: http.Header{}, cl: -1, body: rb}
		c.rwc = writeDiscard{c.rwc} // a 100 Continue goes nowhere
		n, _ := io.Copy(io.Discard, req.Body)
		if n > int64(len(in)-end) {
			t.Fatalf("read %d body bytes from %d sent", n, len(in)-end)
		}
		if req.ContentLength > 0 && n > req.ContentLength {
			t.Fatalf("read %d bytes of a %d-byte body", n, req.ContentLength)
		}
		rb.drain()
	})
}

// newParseConn is a connection of a server with no settings, for parse alone.
func newParseConn() *conn {
	return &conn{s: &Server{}, remote: "192.0.2.1:1234", buf: make([]byte, 0, 64), out: make([]byte, 0, 64)}
}

// parseWith parses head on c into a fresh request state, with room for that many values.
func parseWith(c *conn, head []byte, room int) (*http.Request, *body, string) {
	_, req, rb, why := parseState(c, head, room)
	return req, rb, why
}

// parseState is parseWith that also returns the request's state.
func parseState(c *conn, head []byte, room int) (*requestState, *http.Request, *body, string) {
	st := new(requestState)
	st.ctx.Init(context.Background())
	req, rb, why := c.parse(st, head, make([]string, room))
	return st, req, rb, why
}

type writeDiscard struct{ net.Conn }

func (w writeDiscard) Write(p []byte) (int, error) { return len(p), nil }

// A name that comes more than once keeps every value, in the order received, under its
// canonical key, whatever the case of each line: as net/http reads the same head.
func TestParseRepeatedFields(t *testing.T) {
	for _, head := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nX-A: 2\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nx-a: 1\r\nX-B: b\r\nX-A: 2\r\nx-A:  3 \r\n\r\n",
		"GET / HTTP/1.1\r\nAccept: a\r\nHost: x\r\naccept: b\r\nCookie: c=1\r\ncookie: d=2\r\nCookie: e=3\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nX-Empty:\r\nx-empty: \r\nX-Empty: v\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\nA: 4\r\nD: 5\r\nB: 6\r\nE: 7\r\nA: 8\r\n\r\n",
		"GET / HTTP/1.1\r\nX-A: 1\r\nhost: x\r\nX-A: 2\r\n\r\n", // Host in lower case, among repeats
	} {
		for _, roomSize := range []int{2, 16} {
			req, _, why := parseWith(newParseConn(), []byte(head), roomSize)
			if why != "" {
				t.Fatalf("%q refused: %s", head, why)
			}
			ref, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(req.Header, ref.Header) || req.Host != ref.Host {
				t.Fatalf("%q (room %d):\nh1server %q %q\nnet/http %q %q", head, roomSize, req.Host, req.Header, ref.Host, ref.Header)
			}
		}
	}
}

// Transfer-Encoding names chunked in ASCII letters of any case, as Envoy compares it: a
// Unicode character that folds to one of its letters (the Kelvin sign, U+212A, to k)
// does not make it chunked.
func TestParseChunkedIsASCII(t *testing.T) {
	for te, want := range map[string]string{"chunked": "", "CHUNKED": "", "chun\u212aed": "unsupported Transfer-Encoding"} {
		_, _, why := parseWith(newParseConn(), []byte("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "+te+"\r\n\r\n"), 4)
		if why != want {
			t.Errorf("Transfer-Encoding %q: %q, want %q", te, why, want)
		}
	}
}

// Host is the request's Host, not a field of its map, as net/http has it: taken from the
// head once, refused twice or (HTTP/1.1) missing, and the target's authority wins.
func TestParseHost(t *testing.T) {
	for _, tc := range []struct{ head, host, why string }{
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", "a", ""},
		{"GET / HTTP/1.1\r\nhost: a\r\nX-A: 1\r\n\r\n", "a", ""},
		{"GET http://t/ HTTP/1.1\r\nHost: a\r\n\r\n", "t", ""},
		{"GET / HTTP/1.0\r\n\r\n", "", ""},
		{"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "", "more than one Host header"},
		{"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nhost: a\r\nX-A: 2\r\n\r\n", "", "more than one Host header"},
		{"GET / HTTP/1.1\r\nX-A: 1\r\n\r\n", "", "missing Host header"},
	} {
		req, _, why := parseWith(newParseConn(), []byte(tc.head), 4)
		if why != tc.why || why == "" && (req.Host != tc.host || req.Header["Host"] != nil) {
			got := ""
			if req != nil {
				got = req.Host
			}
			t.Errorf("%q: host %q, %q; want %q, %q", tc.head, got, why, tc.host, tc.why)
		}
	}
}

// reset leaves a request's state as a new one but for its emptied header map and request:
// nothing of the last request stays, whichever fields the state has.
func TestRequestStateReset(t *testing.T) {
	st, req, _, why := parseState(newParseConn(), []byte("GET /a?b HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nContent-Length: 0\r\n\r\n"), 16)
	if why != "" || st.nrecv == 0 || st.fields == 0 || req.URL.RawQuery == "" {
		t.Fatalf("parse: %q, %d fields listed", why, st.nrecv)
	}
	st.reset()
	if len(st.h) != 0 {
		t.Fatalf("header map not emptied: %q", st.h)
	}
	if want := (&requestState{h: st.h, req: st.req}); !reflect.DeepEqual(st, want) {
		t.Fatalf("after reset:\n%+v\nwant a new state's", st)
	}
}
