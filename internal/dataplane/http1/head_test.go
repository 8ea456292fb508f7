package http1

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
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

var bigValue = strings.Repeat("a", 61<<10)

// parseHeadCases are TestParseHead's heads, which TestParseHeadPerLine reads too.
var parseHeadCases = []struct {
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
	{name: "61 KiB header", head: "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + bigValue + "\r\n\r\n", status: 431, details: DetailsHeadersTooLarge},
	{name: "61 KiB header under a raised limit", head: "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + bigValue + "\r\n\r\n", lim: Limits{MaxRequestHeadersKB: 96}},
	{name: "long URL counts", head: "GET /" + bigValue + " HTTP/1.1\r\nHost: x\r\n\r\n", status: 431, details: DetailsHeadersTooLarge},
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

func TestParseHead(t *testing.T) {
	for _, c := range parseHeadCases {
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

// parseHeadSeeds are FuzzParseHead's seeds, which TestParseHeadPerLine reads too.
var parseHeadSeeds = []string{
	"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
	"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
	"GET /#f HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
	"CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\n\r\n",
	"GET / HTTP/1.0\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\nX-B: \x7f\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nX-Abcdefgh_ijk : v\r\n\r\n",
}

func FuzzParseHead(f *testing.F) {
	for _, s := range parseHeadSeeds {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, b []byte, http10 bool) {
		checkPerLine(t, b)
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

// checkPerLine holds parseHead, which reads field lines with ScanField, to parseHeadLines
// reading every line with the per-line passes (LineEnd, parseField): the same Head, the
// same spans, the same Rejection (status, details, message, request line), with and
// without borrow, under limits a few fields reach and under the defaults.
func checkPerLine(t *testing.T, b []byte) {
	t.Helper()
	for _, lim := range []Limits{{}, {AcceptHTTP10: true, MaxHeadersCount: 2, MaxRequestHeadersKB: 1}} {
		for _, borrow := range []bool{false, true} {
			var h, wh Head
			var sp, wsp [maxSpans]FieldSpan
			rj := parseHead(b, lim, &h, borrow, &sp)
			wrj := parseHeadLines(b, lim, &wh, borrow, &wsp, true)
			if !reflect.DeepEqual(h, wh) || sp != wsp || !reflect.DeepEqual(rj, wrj) {
				t.Fatalf("%q (limits %+v, borrow %v):\nScanField: %+v %+v\n%+v\nper line:  %+v %+v\n%+v", b, lim, borrow, h, rj, sp, wh, wrj, wsp)
			}
		}
	}
}

// ScanField's path and the per-line passes decide every head alike: TestParseHead's
// heads, the fuzz targets' seeds and corpus (each head of a Conn's stream), and random
// heads made of the pieces the scanner reads apart.
func TestParseHeadPerLine(t *testing.T) {
	var heads [][]byte
	for _, c := range parseHeadCases {
		heads = append(heads, []byte(c.head))
	}
	for _, s := range parseHeadSeeds {
		heads = append(heads, []byte(s))
	}
	for _, dir := range []string{"testdata/fuzz/FuzzParseHead", "testdata/fuzz/FuzzConn"} {
		files, err := filepath.Glob(filepath.Join(dir, "*"))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range files {
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			// go test fuzz v1, then the []byte argument's Go literal.
			lines := strings.Split(string(b), "\n")
			if len(lines) < 2 || !strings.HasPrefix(lines[1], "[]byte(") {
				t.Fatalf("%s: not a corpus file of a []byte", name)
			}
			s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			heads = append(heads, []byte(s))
		}
	}
	for _, b := range heads {
		// The head as it is, and each head a stream of them holds: from the start or an
		// empty line's end to an empty line's end.
		checkPerLine(t, b)
		for i := 0; i < len(b); {
			for j := i; ; {
				k := bytes.Index(b[j:], []byte("\r\n\r\n"))
				if k < 0 {
					break
				}
				j += k + 4
				checkPerLine(t, b[i:j])
			}
			k := bytes.Index(b[i:], []byte("\r\n\r\n"))
			if k < 0 {
				break
			}
			i += k + 4
		}
	}
	r := rand.New(rand.NewPCG(5, 6))
	for range 50000 {
		checkPerLine(t, randomHead(r))
	}
}

// randomHead is a request line, good or not, and field lines from randomFields; most
// heads are clean (a good request line, Host, clean fields), so that many are taken and
// many refused only by a later check.
func randomHead(r *rand.Rand) []byte {
	if r.IntN(4) != 0 {
		lines := []string{"GET / HTTP/1.1", "GET /echo?size=1024 HTTP/1.1", "POST /a#f HTTP/1.1", "CONNECT a:1 HTTP/1.1"}
		b := append([]byte(lines[r.IntN(len(lines))]), "\r\nHost: a:1\r\n"...)
		return append(b, randomFields(r, true)...)
	}
	lines := []string{"GET / HTTP/1.1", "GET /echo?size=1024 HTTP/1.1", "POST /a#f HTTP/1.1", "CONNECT a:1 HTTP/1.1",
		"GET / HTTP/1.0", "GET /a b HTTP/1.1", "G(T / HTTP/1.1", "GET /", "OPTIONS * HTTP/1.1", "GET / HTTP/2.0"}
	b := append([]byte(lines[r.IntN(len(lines))]), "\r\n"...)
	b = append(b, randomFields(r, false)...)
	if r.IntN(4) != 0 && !bytes.HasSuffix(b, []byte("\r\n\r\n")) {
		b = append(b, "\r\n\r\n"...)
	}
	return b
}

// Every byte at every place of a request line, up to past two words of its target
// (scanRequestLine reads eight bytes at a time), and around its version and CRLF: the
// one-pass reader takes what parseRequestLine takes, and leaves it the rest.
func TestScanRequestLineEveryByte(t *testing.T) {
	for c := range 256 {
		b := string([]byte{byte(c)})
		for _, line := range []string{"GET /abcdefghijklmnopqrst HTTP/1.1", "M-SEARCH /a?b=c&d=%41#frag HTTP/1.0", "OPTIONS * HTTP/1.1"} {
			for p := 0; p <= len(line); p++ {
				checkPerLine(t, []byte(line[:p]+b+line[p:]+"\r\nHost: x\r\n\r\n"))
				if p < len(line) {
					checkPerLine(t, []byte(line[:p]+b+line[p+1:]+"\r\nHost: x\r\n\r\n"))
				}
			}
		}
		for _, head := range []string{
			"GET / HTTP/1.1" + b + "\nHost: x\r\n\r\n",
			"GET / HTTP/1.1\r" + b + "Host: x\r\n\r\n",
			"GET / HTTP/1." + b + "\r\n\r\n",
			"GET /" + b + " HTTP/1.1\r\n\r\n",
			"GET " + b + " HTTP/1.1\r\n\r\n",
			"GET /" + b + "\r\n\r\n",
			b + " / HTTP/1.1\r\n\r\n",
		} {
			checkPerLine(t, []byte(head))
		}
	}
}

// targetStops marks what a byte at a time finds first, whatever the bytes around it.
func TestTargetStops(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for c := range 256 {
		for p := range 8 {
			for range 64 {
				var w [8]byte
				for i := range w {
					w[i] = byte(r.IntN(256))
				}
				w[p] = byte(c)
				want := -1
				for i, c := range w {
					if c <= ' ' || c >= 0x7f || c == '#' {
						want = i
						break
					}
				}
				m := targetStops(binary.LittleEndian.Uint64(w[:]))
				got := -1
				if m != 0 {
					got = bits.TrailingZeros64(m) >> 3
				}
				if got != want {
					t.Fatalf("targetStops(%q): first stop %d, want %d", w, got, want)
				}
			}
		}
	}
}

// addRef is fields.add as it compared names before it compared by length first.
func (f *fields) addRef(name, value []byte) {
	switch {
	case EqualFoldASCII(name, "host"):
		if f.hosts++; f.hosts == 1 {
			f.host = value
		}
	case EqualFoldASCII(name, "content-length"):
		if f.cls++; f.cls == 1 {
			f.cl = value
		} else if !bytes.Equal(value, f.cl) && f.clOther == nil {
			f.clOther = value
		}
	case EqualFoldASCII(name, "transfer-encoding"):
		if f.tes++; f.tes == 1 {
			f.te = value
		}
	case EqualFoldASCII(name, "connection"):
		for t := range bytes.SplitSeq(value, []byte(",")) {
			if EqualFoldASCII(bytes.TrimSpace(t), "upgrade") {
				f.connUpgrade = true
			}
		}
	case EqualFoldASCII(name, "upgrade"):
		f.upgrade = bytes.TrimSpace(value)
	}
}

// add notes the fields addRef notes, a name in any case, one byte off, or another name
// of the same length.
func TestFieldsAdd(t *testing.T) {
	var names []string
	for _, n := range []string{"Host", "Content-Length", "Transfer-Encoding", "Connection", "Upgrade"} {
		names = append(names, n, strings.ToLower(n), strings.ToUpper(n))
		for i := range n {
			names = append(names, n[:i]+"x"+n[i+1:], n[:i]+string(n[i]^0x20)+n[i+1:], n[:i]+string(n[i]^0x21)+n[i+1:])
		}
	}
	names = append(names, "Accept", "X-Request-Id", "H\u212ast", "Hos", "Hostt")
	values := []string{"5", "6", "chunked", "keep-alive, Upgrade", "upgrade", " websocket ", "a b"}
	r := rand.New(rand.NewPCG(9, 10))
	for range 20000 {
		var f, w fields
		for range r.IntN(6) {
			n, v := []byte(names[r.IntN(len(names))]), []byte(values[r.IntN(len(values))])
			f.add(n, v)
			w.addRef(n, v)
		}
		if !reflect.DeepEqual(f, w) {
			t.Fatalf("add: %+v, addRef: %+v", f, w)
		}
	}
}

// validEscapesRef is validEscapes as it cut the query first.
func validEscapesRef(t string) bool {
	path, _, _ := strings.Cut(t, "?")
	for i := 0; i < len(path); i++ {
		if path[i] != '%' {
			continue
		}
		if i+2 >= len(path) || !isHex(path[i+1]) || !isHex(path[i+2]) {
			return false
		}
		i += 2
	}
	return true
}

// validEscapes decides every target of escapes, query marks and hex digits as the
// reference does.
func TestValidEscapes(t *testing.T) {
	const pieces = "%?aF0g/"
	var gen func(prefix string, n int)
	gen = func(prefix string, n int) {
		if got, want := validEscapes(prefix), validEscapesRef(prefix); got != want {
			t.Fatalf("validEscapes(%q) = %v, want %v", prefix, got, want)
		}
		if n == 0 {
			return
		}
		for i := range len(pieces) {
			gen(prefix+pieces[i:i+1], n-1)
		}
	}
	gen("/", 6)
}
