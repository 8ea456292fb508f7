package http1

import (
	"bufio"
	"bytes"
	"net/http"
	"strings"
	"testing"
)

func manyHeaders(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("X-H" + itoa(i) + ": v\r\n")
	}
	return b.String()
}

func TestParseHead(t *testing.T) {
	big := strings.Repeat("a", 61<<10)
	cases := []struct {
		name, head string
		lim        Limits
		status     int    // 0: accepted
		details    string // when refused
		check      func(*testing.T, *Head)
	}{
		{name: "plain GET", head: "GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n",
			check: func(t *testing.T, h *Head) {
				t.Helper()
				if h.ContentLength != -1 || h.Chunked || h.Upgrade || h.Fields != 1 {
					t.Errorf("head %+v", h)
				}
			}},
		{name: "content length", head: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n",
			check: func(t *testing.T, h *Head) {
				t.Helper()
				if h.ContentLength != 5 {
					t.Errorf("length %d", h.ContentLength)
				}
			}},
		{name: "identical duplicate content length", head: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"},
		{name: "chunked", head: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n",
			check: func(t *testing.T, h *Head) {
				t.Helper()
				if !h.Chunked {
					t.Error("not chunked")
				}
			}},
		{name: "websocket upgrade", head: "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n",
			check: func(t *testing.T, h *Head) {
				t.Helper()
				if !h.Upgrade {
					t.Error("not an upgrade")
				}
			}},
		{name: "h2c upgrade ignored", head: "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
			check: func(t *testing.T, h *Head) {
				t.Helper()
				if h.Upgrade {
					t.Error("h2c taken for an upgrade")
				}
			}},
		{name: "fragment stripped", head: "GET /api/x#frag HTTP/1.1\r\nHost: x\r\n\r\n",
			check: func(t *testing.T, h *Head) {
				t.Helper()
				if h.Target != "/api/x" || string(h.Line) != "GET /api/x HTTP/1.1" {
					t.Errorf("target %q line %q", h.Target, h.Line)
				}
			}},
		{name: "absolute form", head: "GET http://reviews:9080/r HTTP/1.1\r\nHost: reviews:9080\r\n\r\n"},
		{name: "connect", head: "CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\n",
			check: func(t *testing.T, h *Head) {
				t.Helper()
				if !h.Connect {
					t.Error("not a CONNECT")
				}
			}},
		{name: "options asterisk", head: "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"},
		{name: "100 headers", head: "GET / HTTP/1.1\r\nHost: x\r\n" + manyHeaders(99) + "\r\n"},
		{name: "60 KiB exactly", head: "GET / HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("a", 60<<10-len("/")-len("Host")-len("x")-len("X")) + "\r\n\r\n"},
		{name: "http/1.0 accepted when configured", head: "GET / HTTP/1.0\r\n\r\n", lim: Limits{AcceptHTTP10: true}},

		{name: "101 headers", head: "GET / HTTP/1.1\r\nHost: x\r\n" + manyHeaders(100) + "\r\n", status: 431, details: DetailsTooManyHeaders},
		{name: "count limit configured", head: "GET / HTTP/1.1\r\nHost: x\r\n" + manyHeaders(10) + "\r\n", lim: Limits{MaxHeadersCount: 10}, status: 431, details: DetailsTooManyHeaders},
		{name: "61 KiB header", head: "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + big + "\r\n\r\n", status: 431, details: DetailsHeadersTooLarge},
		{name: "61 KiB header under a raised limit", head: "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + big + "\r\n\r\n", lim: Limits{MaxRequestHeadersKB: 96}},
		{name: "long URL counts", head: "GET /" + big + " HTTP/1.1\r\nHost: x\r\n\r\n", status: 431, details: DetailsHeadersTooLarge},
		{name: "CL and TE", head: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n", status: 400, details: DetailsChunkedCL},
		{name: "TE and CL", head: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n", status: 400, details: DetailsChunkedCL},
		{name: "folded TE", head: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n", status: 400, details: DetailsCodecError},
		{name: "obs-fold anywhere", head: "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n", status: 400, details: DetailsCodecError},
		{name: "TE gzip", head: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", status: 501, details: DetailsInvalidTE},
		{name: "TE twice", head: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", status: 501, details: DetailsInvalidTE},
		{name: "TE with trailing junk", head: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n", status: 501, details: DetailsInvalidTE},
		{name: "TE chunked with a Kelvin sign for its k", head: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chun\u212aed\r\n\r\n", status: 501, details: DetailsInvalidTE},
		{name: "TE chunked in upper case", head: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: CHUNKED\r\n\r\n"},
		{name: "TE xchunked", head: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n", status: 501, details: DetailsInvalidTE},
		{name: "TE on CONNECT", head: "CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\nTransfer-Encoding: chunked\r\n\r\n", status: 501, details: DetailsInvalidTE},
		{name: "space before colon", head: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n", status: 400, details: DetailsCodecError},
		{name: "differing CLs", head: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n", status: 400, details: DetailsCodecError},
		{name: "CL list", head: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4, 4\r\n\r\n", status: 400, details: DetailsCodecError},
		{name: "CL negative", head: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", status: 400, details: DetailsCodecError},
		{name: "CL plus sign", head: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +4\r\n\r\n", status: 400, details: DetailsCodecError},
		{name: "CONNECT body", head: "CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\nContent-Length: 3\r\n\r\n", status: 400, details: DetailsBodyDisallowed},
		{name: "HTTP/1.0", head: "GET / HTTP/1.0\r\nHost: x\r\n\r\n", status: 426, details: DetailsLowVersion},
		{name: "HTTP/0.9", head: "GET /\r\n\r\n", status: 400, details: DetailsCodecError},
		{name: "HTTP/2.0 line", head: "GET / HTTP/2.0\r\nHost: x\r\n\r\n", status: 400, details: DetailsCodecError},
		{name: "no host", head: "GET / HTTP/1.1\r\nX: y\r\n\r\n", status: 400, details: DetailsMissingHost},
		{name: "two hosts", head: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", status: 400, details: DetailsCodecError},
		{name: "bad host", head: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", status: 400, details: DetailsInvalidAuthority},
		{name: "NUL in value", head: "GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n", status: 400, details: DetailsInvalidCharacters},
		{name: "CR in value", head: "GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n", status: 400, details: DetailsInvalidCharacters},
		{name: "bad header name", head: "GET / HTTP/1.1\r\nHost: x\r\nX Y: a\r\n\r\n", status: 400, details: DetailsCodecError},
		{name: "no colon", head: "GET / HTTP/1.1\r\nHost: x\r\nXY\r\n\r\n", status: 400, details: DetailsCodecError},
		{name: "space in target", head: "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", status: 400, details: DetailsCodecError},
		{name: "non-ASCII target", head: "GET /\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", status: 400, details: DetailsCodecError},
		{name: "relative target", head: "GET a/b HTTP/1.1\r\nHost: x\r\n\r\n", status: 400, details: DetailsInvalidURL},
		{name: "asterisk for GET", head: "GET * HTTP/1.1\r\nHost: x\r\n\r\n", status: 400, details: DetailsInvalidURL},
		{name: "bad method", head: "G(T / HTTP/1.1\r\nHost: x\r\n\r\n", status: 400, details: DetailsCodecError},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, rj := ParseHead([]byte(c.head), c.lim)
			if c.status == 0 {
				if rj != nil {
					t.Fatalf("refused: %d %s: %s", rj.Status, rj.Details, rj.Reason)
				}
				if c.check != nil {
					c.check(t, h)
				}
				agreesWithNetHTTP(t, h, []byte(c.head))
				return
			}
			if rj == nil {
				t.Fatalf("accepted %+v, want %d %s", h, c.status, c.details)
			}
			if rj.Status != c.status || rj.Details != c.details || rj.Reason == "" {
				t.Fatalf("got %d %s (%s), want %d %s", rj.Status, rj.Details, rj.Reason, c.status, c.details)
			}
		})
	}
}

// agreesWithNetHTTP checks that net/http reads an accepted head (with its Line) the
// same way: no error, the same body framing.
func agreesWithNetHTTP(t *testing.T, h *Head, head []byte) {
	t.Helper()
	i := bytes.Index(head, []byte("\r\n"))
	in := append(append([]byte{}, h.Line...), head[i:]...)
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(in)))
	if err != nil {
		t.Fatalf("net/http refuses a head ParseHead accepted: %v\n%q", err, in)
	}
	chunked := len(req.TransferEncoding) > 0 && req.TransferEncoding[0] == "chunked"
	if h.Proto == "HTTP/1.1" && chunked != h.Chunked {
		t.Fatalf("chunked: net/http %v, ParseHead %v", chunked, h.Chunked)
	}
	if !h.Chunked && h.ContentLength > 0 && req.ContentLength != h.ContentLength {
		t.Fatalf("length: net/http %d, ParseHead %d", req.ContentLength, h.ContentLength)
	}
}

func TestHeadEnd(t *testing.T) {
	for _, c := range []struct {
		in   string
		end  int
		fail bool
	}{
		{"GET / HTTP/1.1\r\nHost: x\r\n\r\nrest", 27, false},
		{"GET / HTTP/1.1\r\nHost: x\r\n", -1, false},
		{"GET / HTTP/1.1\nHost: x\r\n\r\n", -1, true},
		{"GET / HTTP/1.1\r\nHost: x\n\n", -1, true},
	} {
		end, rj := headEnd([]byte(c.in))
		if end != c.end || (rj != nil) != c.fail {
			t.Errorf("%q: end %d rejection %v, want %d %v", c.in, end, rj, c.end, c.fail)
		}
	}
}

func TestChunkSize(t *testing.T) {
	for _, c := range []struct {
		line string
		n    int64
		ok   bool
	}{
		{"5", 5, true}, {"1A", 26, true}, {"0", 0, true}, {"5;name=value", 5, true}, {"5;a=\"q s\"", 5, true},
		{"zz", 0, false}, {"", 0, false}, {"5 ", 0, false}, {" 5", 0, false}, {"5 ;a", 0, false},
		{"-1", 0, false}, {"0x5", 0, false}, {"1000000000000000", 0, false}, {"5;a\x01", 0, false},
	} {
		n, why := chunkSize([]byte(c.line))
		if (why == "") != c.ok || n != c.n {
			t.Errorf("%q: %d %q, want %d ok=%v", c.line, n, why, c.n, c.ok)
		}
	}
}

func FuzzParseHead(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
		"GET /#f HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
		"CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
	} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, b []byte, http10 bool) {
		h, rj := ParseHead(b, Limits{AcceptHTTP10: http10, MaxHeadersCount: 20, MaxRequestHeadersKB: 1})
		if (h == nil) == (rj == nil) {
			t.Fatalf("head %v and rejection %v", h, rj)
		}
		if rj != nil {
			if rj.Status < 400 || rj.Status > 599 || rj.Details == "" || rj.Reason == "" {
				t.Fatalf("incomplete rejection %+v", rj)
			}
			return
		}
		if h.Chunked && h.ContentLength >= 0 {
			t.Fatalf("both chunked and Content-Length accepted: %q", b)
		}
		// A head accepted whole is one head, its lines ending in CRLF: Conn's inPlace relies
		// on it instead of finding the end first.
		if end, rj := headEnd(b); len(b) > 2 && (end != len(b) || rj != nil) {
			t.Fatalf("accepted %q, whose head ends at %d (%v)", b, end, rj)
		}
		agreesWithNetHTTP(t, h, b)
	})
}

// Value reads a field by its canonical name as Get does.
func TestValue(t *testing.T) {
	h := http.Header{"Content-Type": {"a", "b"}, "X-Empty": {}}
	for _, k := range []string{"Content-Type", "X-Empty", "X-Missing"} {
		if got, want := Value(h, k), h.Get(k); got != want {
			t.Errorf("Value(%q) = %q, Get says %q", k, got, want)
		}
	}
	if Value(nil, "Content-Type") != "" {
		t.Error("Value of a nil header is not empty")
	}
}
