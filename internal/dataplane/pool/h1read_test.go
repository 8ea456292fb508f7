package pool

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/strslab"
)

// Which heads the plain reader takes, and which it leaves to net/http.
func TestPlainHead(t *testing.T) {
	get, _ := http.NewRequest(http.MethodGet, "http://svc/", nil)
	head, _ := http.NewRequest(http.MethodHead, "http://svc/", nil)
	cases := []struct {
		name, head string
		req        *http.Request
		plain      bool
	}{
		{"plain", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n", get, true},
		{"lower-case names", "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nx-a:  b \r\nX-A: c\r\n", get, true},
		{"usual names in lower and upper case", "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nCONTENT-LENGTH: 5\r\ncache-control: no-cache\r\nX-Request-ID: 1\r\n", get, true},
		{"more fields than the parser's notes hold", "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-A: 1\r\nx-b: 2\r\n", 12) + "Content-Length: 5\r\n", get, true},
		{"a name twice", "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nX-A: 1\r\nset-cookie: b=2\r\nContent-Length: 5\r\n", get, true},
		{"tab around a value", "HTTP/1.1 200 OK\r\nX-A:\t b\tc \t\r\nX-B:\t\r\nContent-Length: 5\r\n", get, true},
		{"TRANSFER-ENCODING", "HTTP/1.1 200 OK\r\nTRANSFER-ENCODING: chunked\r\n", get, false},
		{"Connection: keep-alive with a Kelvin sign (not ASCII: net/http's)", "HTTP/1.1 200 OK\r\nConnection: \u212aeep-alive\r\nContent-Length: 1\r\n", get, false},
		{"no reason phrase", "HTTP/1.1 404\r\nContent-Length: 3\r\n", get, true},
		{"no Content-Length: close-delimited", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n", get, false},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n", get, false},
		{"Connection: close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n", get, false},
		{"Connection: keep-alive (nginx)", "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 1\r\nConnection: keep-alive\r\n", get, true},
		{"every hop-by-hop field a plain answer may have, in any case", "HTTP/1.1 200 OK\r\nconnection: keep-alive\r\nKEEP-ALIVE: timeout=5\r\nProxy-Connection: x\r\nproxy-authenticate: Basic\r\nProxy-Authorization: y\r\nte: trailers\r\nUpgrade: h2c\r\nContent-Length: 1\r\n", get, true},
		{"Connection: Keep-Alive, twice", "HTTP/1.1 200 OK\r\nConnection: Keep-Alive\r\nconnection: keep-alive\r\nContent-Length: 1\r\n", get, true},
		{"Connection: keep-alive, close", "HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 1\r\n", get, false},
		{"Connection: keep-alive then close", "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: close\r\nContent-Length: 1\r\n", get, false},
		{"Connection naming a field", "HTTP/1.1 200 OK\r\nConnection: X-A\r\nX-A: b\r\nContent-Length: 1\r\n", get, false},
		{"two Content-Lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n", get, false},
		{"Pragma", "HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 1\r\n", get, false},
		{"Trailer", "HTTP/1.1 200 OK\r\nTrailer: X-A\r\nContent-Length: 1\r\n", get, false},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n", get, false},
		{"1xx", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n", get, false},
		{"204", "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n", get, false},
		{"304", "HTTP/1.1 304 Not Modified\r\nContent-Length: 4\r\n", get, false},
		{"answer to HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n", head, false},
		{"folded line", "HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\nContent-Length: 1\r\n", get, false},
		{"space before colon", "HTTP/1.1 200 OK\r\nX-A : b\r\nContent-Length: 1\r\n", get, false},
		{"control byte in a value", "HTTP/1.1 200 OK\r\nX-A: b\x01\r\nContent-Length: 1\r\n", get, false},
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 1\r\n", get, false},
		{"signed length", "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n", get, false},
		// What the one-pass scanner (h1scan.go) reads in its own way.
		{"trailing OWS, a tab as the OWS", "HTTP/1.1 200 OK\r\nX-A:\tb \t \r\nContent-Length: 5\r\n", get, true},
		{"empty values", "HTTP/1.1 200 OK\r\nX-A:\r\nX-B: \r\nContent-Length: 5\r\n", get, true},
		{"obs-text in a value", "HTTP/1.1 200 OK\r\nX-A: caf\xc3\xa9 \x80\xff\r\nContent-Length: 5\r\n", get, true},
		{"obs-text in the reason", "HTTP/1.1 200 \xc3\x89tat\r\nContent-Length: 5\r\n", get, true},
		{"names of other token bytes", "HTTP/1.1 200 OK\r\nX_A.b: 1\r\nx~y!z#a$b%c&d'e*f+g^h`i|j: 2\r\nContent-Length: 5\r\n", get, true},
		{"names across words", "HTTP/1.1 200 OK\r\nAbcdefg-Hijklmn-Opqrstuv: 1\r\nAbcdefg-hijklmn: 2\r\nX-Long-Name-With-Digits-1234: 3\r\nContent-Length: 5\r\n", get, true},
		{"DEL in a value", "HTTP/1.1 200 OK\r\nX-A: b\x7f\r\nContent-Length: 1\r\n", get, false},
		{"NUL in a value", "HTTP/1.1 200 OK\r\nX-A: b\x00c\r\nContent-Length: 1\r\n", get, false},
		{"lone CR in a value", "HTTP/1.1 200 OK\r\nX-A: b\rc\r\nContent-Length: 1\r\n", get, false},
		{"control byte in the reason", "HTTP/1.1 200 O\x01K\r\nContent-Length: 1\r\n", get, false},
		{"non-token byte in a name", "HTTP/1.1 200 OK\r\nX(A): b\r\nContent-Length: 1\r\n", get, false},
		{"obs-text in a name", "HTTP/1.1 200 OK\r\nX-\xc1: b\r\nContent-Length: 1\r\n", get, false},
		{"':' first", "HTTP/1.1 200 OK\r\n: b\r\nContent-Length: 1\r\n", get, false},
		{"a field line without ':'", "HTTP/1.1 200 OK\r\nX-A b\r\nContent-Length: 1\r\n", get, false},
		{"bare LF ending a field line", "HTTP/1.1 200 OK\r\nX-A: b\nContent-Length: 1\r\n", get, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkPlain(t, []byte(c.head+"\r\nhello"), c.req, c.plain)
		})
	}
}

// checkPlain reads raw with the plain reader and with http.ReadResponse; where the plain
// reader takes the head, both must agree on the status, the fields, the body's length and
// its bytes. want, when given, is whether the plain reader must take it.
func checkPlain(t *testing.T, raw []byte, req *http.Request, want ...bool) {
	t.Helper()
	c := &h1Conn{br: bufio.NewReaderSize(bytes.NewReader(raw), 16<<10)}
	pr, err := c.plainResponse(req)
	if len(want) > 0 && (pr != nil) != want[0] {
		t.Fatalf("plain reader took the head: %v, want %v (err %v)", pr != nil, want[0], err)
	}
	if pr == nil {
		return
	}
	defer pr.Recycle() // the next head is read into this one's memory
	resp, n := &pr.resp, pr.resp.ContentLength
	ref, rerr := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), req)
	if rerr != nil {
		t.Fatalf("plain reader took a head net/http refuses (%v):\n%q", rerr, raw)
	}
	defer ref.Body.Close()
	if resp.StatusCode != ref.StatusCode || resp.Status != ref.Status || resp.Proto != ref.Proto ||
		resp.ContentLength != ref.ContentLength || resp.Close != ref.Close {
		t.Fatalf("plain %d %q %q len %d close %v; net/http %d %q %q len %d close %v", resp.StatusCode, resp.Status, resp.Proto,
			resp.ContentLength, resp.Close, ref.StatusCode, ref.Status, ref.Proto, ref.ContentLength, ref.Close)
	}
	refFields := ref.Header.Clone()
	delete(refFields, "Connection") // "keep-alive" only (anything else is not plain): not passed on
	if !reflect.DeepEqual(resp.Header, refFields) {
		t.Fatalf("fields: plain %q, net/http %q (without Connection: keep-alive)", resp.Header, refFields)
	}
	// HopFields lists every hop-by-hop key of the map, and no other (a proxy deletes what
	// it lists and does not look further).
	listed := map[string]bool{}
	for _, k := range pr.HopFields() {
		if _, ok := resp.Header[k]; !ok || !http1.HopByHop(k) {
			t.Fatalf("HopFields lists %q: in the map %v, hop-by-hop %v", k, ok, http1.HopByHop(k))
		}
		listed[k] = true
	}
	for k := range resp.Header {
		if http1.HopByHop(k) && !listed[k] {
			t.Fatalf("hop-by-hop field %q not in HopFields %q", k, pr.HopFields())
		}
	}
	checkFieldsOnly(t, raw, req, refFields, pr.HopFields())
	checkRecalled(t, raw, req, ref.Status, refFields)
	var body []byte
	if n > 0 {
		body, err = readFixedAll(&h1Body{c: c, remain: n})
	}
	want2, werr := io.ReadAll(ref.Body)
	if !bytes.Equal(body, want2) || (err == nil) != (werr == nil) {
		t.Fatalf("body: plain %q (%v), net/http %q (%v)", body, err, want2, werr)
	}
}

// checkFieldsOnly reads raw again for a caller that asks for the fields as a list
// (FieldsAsker): an answer with a body, at most 16 fields, no name twice and no
// hop-by-hop field comes with its header map empty, its fields listed and found by
// FieldValue; FillHeader then gives the map the pool would have made (want), its values
// the listed ones' slots. Any other answer comes with its map as before.
func checkFieldsOnly(t *testing.T, raw []byte, req *http.Request, want http.Header, hop []string) {
	t.Helper()
	c := &h1Conn{br: bufio.NewReaderSize(bytes.NewReader(raw), 16<<10), fieldsOnly: true}
	pr, _ := c.plainResponse(req)
	if pr == nil {
		t.Fatal("the plain reader refused with fieldsOnly a head it took without")
	}
	defer pr.Recycle()
	pr.body = h1Body{c: c, pr: pr} // as the round trip gives it (h1.go)
	resp := &pr.resp
	if pr.resp.ContentLength > 0 {
		resp.Body = &pr.body
	}
	fields := 0
	for _, vv := range want {
		fields += len(vv)
	}
	deferred := resp.ContentLength > 0 && fields <= len(pr.recvArr) && len(want) == fields && len(hop) == 0
	if HeaderDeferred(resp) != deferred || deferred && (len(resp.Header) != 0 || len(pr.ReceivedFields()) != fields) {
		t.Fatalf("map deferred %v with %d keys and %d fields listed; want deferred %v (%d fields, %d names, length %d, hop %q)",
			HeaderDeferred(resp), len(resp.Header), len(pr.ReceivedFields()), deferred, fields, len(want), resp.ContentLength, hop)
	}
	for k, vv := range want {
		if got := FieldValue(resp, k); got != vv[0] {
			t.Fatalf("FieldValue(%q) = %q, want %q", k, got, vv[0])
		}
	}
	if FieldValue(resp, "X-Not-There") != "" {
		t.Fatal("FieldValue found a field the answer does not have")
	}
	FillHeader(resp)
	if HeaderDeferred(resp) || !reflect.DeepEqual(resp.Header, want) {
		t.Fatalf("after FillHeader: deferred %v, fields %q, want %q", HeaderDeferred(resp), resp.Header, want)
	}
	for _, f := range pr.ReceivedFields() {
		if !f.Received(f.Key, resp.Header[f.Key]) {
			t.Fatalf("field %q in the map is not the listed one (its slot)", f.Key)
		}
	}
}

// readFixedAll reads a plain body without a connection to give back.
func readFixedAll(b *h1Body) ([]byte, error) {
	var out []byte
	p := make([]byte, 3)
	for {
		n, err := b.readFixed(p)
		out = append(out, p[:n]...)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// A plain body that ends before its Content-Length is an unexpected EOF, as net/http's.
func TestPlainBodyCutShort(t *testing.T) {
	get, _ := http.NewRequest(http.MethodGet, "http://svc/", nil)
	checkPlain(t, []byte("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"), get, true)
	c := &h1Conn{br: bufio.NewReader(strings.NewReader("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"))}
	pr, _ := c.plainResponse(get)
	_, err := readFixedAll(&h1Body{c: c, remain: pr.resp.ContentLength})
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err %v, want io.ErrUnexpectedEOF", err)
	}
}

// Whatever the bytes, a head the plain reader takes reads as net/http reads it.
func FuzzPlainHead(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 500 x\r\ncontent-length: 2\r\nx-a: 1\r\nX-A: 2\r\n\r\nab",
		"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 404\r\nContent-Length: 3\r\nkeep-alive: timeout=5\r\n\r\nabc",
		"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nab",
		"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nupgrade: h2c\r\nTE: x\r\nContent-Length: 2\r\n\r\nab",
		"HTTP/1.1 200 OK\r\nX-A:\t b \t\r\nx_b.c: caf\xc3\xa9\r\nAbcdefg-hijklmn:\r\nContent-Length: 2\r\n\r\nab",
		"HTTP/1.1 200 OK\r\nX-A: b\rc\r\nX-B: \x7f\x00\r\n: d\r\nContent-Length: 2\r\n\r\nab",
	} {
		f.Add([]byte(s))
	}
	get, _ := http.NewRequest(http.MethodGet, "http://svc/", nil)
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkPlain(t, raw, get)
	})
}

// A plain body closed from another goroutine while it is read (a stream ended because
// its host left the cluster) ends the exchange once, without a data race: the read ends
// (it does not wait for the rest), the connection is not reused, and the next request
// gets its answer on a new one.
func TestPlainBodyClosedWhileRead(t *testing.T) {
	var conns atomic.Int64
	addr := rawServer(t, func(c net.Conn, br *bufio.Reader, n int) {
		conns.Add(1)
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if req.URL.Path == "/small" {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			return
		}
		// 1 KiB of a 1 MiB body, then nothing until the proxy closes the connection.
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n"+strings.Repeat("x", 1024))
		_, _ = br.ReadByte()
	})
	p := newSet(t, h1Cluster("c")).Get("c")
	resp, err := p.RoundTrip(newReq(t, "GET", "/big", nil), addr, nil, nil) //nolint:bodyclose // closed below, while a read is blocked: what the test is about
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	if n, err := io.ReadFull(resp.Body, buf[:1024]); err != nil || n != 1024 {
		t.Fatal(n, err)
	}
	read := make(chan error)
	go func() {
		_, err := resp.Body.Read(buf) // blocks: the upstream sends nothing more
		read <- err
	}()
	_ = resp.Body.Close()
	if err := <-read; err == nil { // an error if it was blocked, io.EOF if it came after
		t.Fatal("read of a body closed meanwhile returned no error")
	}
	r, err := do(t, p, addr, newReq(t, "GET", "/small", nil), nil)
	if err != nil || r.body != "ok" || conns.Load() != 2 {
		t.Fatalf("next request: %v %q on %d connections, want ok on a second one", err, r.body, conns.Load())
	}
}

// A response's memory, recycled, serves the next response: the next one carries its own
// fields only. That holds for the HTTP/1.1 plain path and the pool's HTTP/2 client;
// responses net/http read (a chunked one) have nothing to recycle.
func TestRecycledResponse(t *testing.T) {
	h := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Path", r.URL.Path)
		if r.URL.Path == "/a" {
			w.Header().Set("X-Only-A", "1")
		}
		if r.URL.Path == "/chunked" {
			w.(http.Flusher).Flush() // no Content-Length: chunked
		}
		_, _ = io.WriteString(w, "body of "+r.URL.Path)
	}
	for name, proto := range map[string]resource.Protocol{"http1": resource.HTTP1, "http2": resource.HTTP2} {
		t.Run(name, func(t *testing.T) {
			addr := upstream(t, proto == resource.HTTP2, h)
			cl := h1Cluster("c")
			cl.Protocol = proto
			p := newSet(t, cl).Get("c")
			for i, path := range []string{"/a", "/b", "/chunked", "/a", "/b"} {
				resp, err := p.RoundTrip(newReq(t, http.MethodGet, path, nil), addr, nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				b, err := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if err != nil || string(b) != "body of "+path {
					t.Fatalf("%d %s: body %q, %v", i, path, b, err)
				}
				_, onlyA := resp.Header["X-Only-A"]
				if resp.Header.Get("X-Path") != path || onlyA != (path == "/a") {
					t.Fatalf("%d %s: fields %v", i, path, resp.Header)
				}
				r := Recycler(resp)
				if want := path != "/chunked" || proto == resource.HTTP2; (r != nil) != want {
					t.Fatalf("%d %s: Recycler %v; want one: %v", i, path, r, want)
				}
				if r != nil {
					h := resp.Header
					r.Recycle()
					if len(h) != 0 {
						t.Fatalf("%d %s: a recycled response's map keeps %v", i, path, h)
					}
				}
			}
		})
	}
}

// The plain reader offers the fields it parsed, in the order received, for up to 16 fields
// and no name twice; the map then holds each at its offered slot.
func TestReceivedFields(t *testing.T) {
	get, _ := http.NewRequest(http.MethodGet, "http://svc/", nil)
	head := func(names ...string) string {
		h := "HTTP/1.1 200 OK\r\n"
		for i, n := range names {
			h += n + ": v" + strconv.Itoa(i) + "\r\n"
		}
		return h + "\r\n"
	}
	names := func(n int) []string {
		out := []string{"Content-Length"}
		for i := 1; i < n; i++ {
			out = append(out, "X-F"+strconv.Itoa(i))
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		names []string
		want  int
	}{
		{"sixteen", names(16), 16},
		{"seventeen", names(17), 0},
		{"a name twice", []string{"Content-Length", "Set-Cookie", "set-cookie"}, 0},
		{"lower case", []string{"content-length", "x-a"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := strings.Replace(head(tc.names...), "Content-Length: v0", "Content-Length: 0", 1)
			raw = strings.Replace(raw, "content-length: v0", "content-length: 0", 1)
			c := &h1Conn{br: bufio.NewReader(strings.NewReader(raw))}
			pr, _ := c.plainResponse(get)
			if pr == nil {
				t.Fatalf("%q not plain", raw)
			}
			defer pr.Recycle()
			rf := pr.ReceivedFields()
			if len(rf) != tc.want {
				t.Fatalf("%d received fields, want %d", len(rf), tc.want)
			}
			for i, f := range rf {
				if f.Key != http.CanonicalHeaderKey(tc.names[i]) || !f.Received(f.Key, pr.resp.Header[f.Key]) {
					t.Fatalf("field %d: %+v, map %q", i, f, pr.resp.Header[f.Key])
				}
			}
		})
	}
}

// recalled holds the lines of the last head checkRecalled read.
var recalled = struct {
	sync.Mutex
	rc strslab.Recall
}{}

// checkRecalled reads raw again on a connection whose last answer was the head read before
// it (recalled): its status and fields are still net/http's (status, want), whichever of
// its lines are recalled and whichever copied.
func checkRecalled(t *testing.T, raw []byte, req *http.Request, status string, want http.Header) {
	t.Helper()
	recalled.Lock()
	defer recalled.Unlock()
	c := &h1Conn{br: bufio.NewReaderSize(bytes.NewReader(bytes.Clone(raw)), 16<<10), recall: recalled.rc}
	pr, _ := c.plainResponse(req)
	recalled.rc = c.recall
	if pr == nil {
		t.Fatal("the plain reader refused after another head a head it took before")
	}
	defer pr.Recycle()
	if pr.resp.Status != status || !reflect.DeepEqual(pr.resp.Header, want) {
		t.Fatalf("after the last head: %q %q, want %q %q", pr.resp.Status, pr.resp.Header, status, want)
	}
}

// A connection's next answer gets the strings of the lines it repeats in the same place
// and copies of the others; what the last answer's reader kept stays what it was.
func TestRecalledAnswerLines(t *testing.T) {
	get, _ := http.NewRequest(http.MethodGet, "http://svc/", nil)
	c := &h1Conn{}
	read := func(raw string) (http.Header, string) {
		t.Helper()
		buf := []byte(raw)
		c.br = bufio.NewReader(bytes.NewReader(buf))
		pr, _ := c.plainResponse(get)
		if pr == nil {
			t.Fatalf("not plain: %q", raw)
		}
		h, st := pr.resp.Header.Clone(), pr.resp.Status
		for k, vv := range pr.resp.Header { // the values themselves, not copies
			h[k] = []string{vv[0]}
		}
		pr.Recycle()
		clear(buf)
		return h, st
	}
	h1, st1 := read("HTTP/1.1 200 OK\r\nServer: up\r\nContent-Length: 2\r\nETag: \"1\"\r\n\r\nok")
	h2, st2 := read("HTTP/1.1 200 OK\r\nServer: up\r\nContent-Length: 3\r\nETag: \"1\"\r\n\r\nok!")
	if h1.Get("Content-Length") != "2" || h2.Get("Content-Length") != "3" || h2.Get("Server") != "up" || h2.Get("Etag") != `"1"` || st2 != "200 OK" {
		t.Fatalf("answers %q, then %q %q", h1, st2, h2)
	}
	for _, k := range []string{"Server", "Etag"} {
		if unsafe.StringData(h1.Get(k)) != unsafe.StringData(h2.Get(k)) {
			t.Errorf("the repeated %s line was copied again", k)
		}
	}
	if unsafe.StringData(st1) != unsafe.StringData(st2) {
		t.Error("the repeated status line was copied again")
	}
	h3, st3 := read("HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nServer: up\r\n\r\nno")
	if st3 != "404 Not Found" || h3.Get("Server") != "up" || h3.Get("Content-Length") != "2" || len(h3) != 2 {
		t.Fatalf("third answer %q %q", st3, h3)
	}
}
