package hardening

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/testutil"
)

// rawCase is one conformance case: bytes in, the exact status (or a close) out.
type rawCase struct {
	name string
	// parts are written in order; between parts the case waits until the app has seen
	// waitApp (when set), so the request is in flight at every hop.
	parts   []string
	waitApp string
	status  int    // 0: the connection closes without an answer
	details string // the access log's %RESPONSE_CODE_DETAILS% ("" when not checked)
	lucid   string // a piece of x-lucid-error ("" when not checked)
	open    bool   // the connection stays open after the answer (otherwise it must close)
	// neverApp is a request ("METHOD path") that must never reach the app.
	neverApp string
	// appSaw is a request ("METHOD path") that must reach the app.
	appSaw string
	// defaultLimits: the case expects Envoy's default header limits, which the sidecar's
	// ProxyConfig raises (TestConfiguredLimits covers those).
	defaultLimits bool
}

func headers(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "X-H%d: v\r\n", i)
	}
	return b.String()
}

// conformance are Envoy's HTTP/1.1 codec decisions (the reference for every case), the
// smuggling forms of RFC 9112 §6.3 and the hardening the mesh promises.
func conformance() []rawCase {
	big := strings.Repeat("a", 61<<10)
	chunkedPost := func(path string) string {
		return "POST " + path + " HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
	}
	return []rawCase{
		// A plain request works and keeps the connection.
		{name: "plain GET", parts: []string{"GET /echo/plain HTTP/1.1\r\nHost: app\r\n\r\n"}, status: 200, open: true, appSaw: "GET /echo/plain"},
		{name: "chunked POST", parts: []string{chunkedPost("/echo/chunked") + "0\r\n\r\n"}, status: 200, open: true, appSaw: "POST /echo/chunked"},

		// A malformed chunk size is answered 400 at once, and closes everything.
		{name: "malformed chunk size mid-request", parts: []string{chunkedPost("/echo/badchunk"), "zz\r\nmore\r\n0\r\n\r\n"},
			waitApp: "POST /echo/badchunk", status: 400, details: "http1.codec_error", lucid: "not hexadecimal"},
		{name: "chunk longer than its size", parts: []string{chunkedPost("/echo/longchunk"), "3\r\nabcdef\r\n0\r\n\r\n"},
			waitApp: "POST /echo/longchunk", status: 400, details: "http1.codec_error", lucid: "not followed by CRLF"},
		{name: "bare LF after a chunk size", parts: []string{chunkedPost("/echo/lfchunk"), "3\nabc\r\n0\r\n\r\n"},
			waitApp: "POST /echo/lfchunk", status: 400, details: "http1.codec_error", lucid: "LF without CR"},

		// Header limits (Envoy: 60 KiB, 100 headers), with a reply that says which.
		{name: "61 KiB header", parts: []string{"GET /echo/big HTTP/1.1\r\nHost: app\r\nX-Big: " + big + "\r\n\r\n"},
			status: 431, details: "http1.headers_too_large", lucid: "max_request_headers_kb (60 KiB", neverApp: "GET /echo/big", defaultLimits: true},
		{name: "101 headers", parts: []string{"GET /echo/many HTTP/1.1\r\nHost: app\r\n" + headers(100) + "\r\n"},
			status: 431, details: "http1.too_many_headers", lucid: "max_headers_count (100)", neverApp: "GET /echo/many", defaultLimits: true},
		{name: "100 headers", parts: []string{"GET /echo/hundred HTTP/1.1\r\nHost: app\r\n" + headers(99) + "\r\n"},
			status: 200, open: true, appSaw: "GET /echo/hundred"},
		{name: "5000 headers", parts: []string{"GET /echo/flood HTTP/1.1\r\nHost: app\r\n" + headers(5000) + "\r\n"},
			status: 431, neverApp: "GET /echo/flood"},

		// Ambiguous framing (RFC 9112 §6.3): never forwarded, the request behind it neither.
		{name: "CL and TE", parts: []string{"POST /echo/clte HTTP/1.1\r\nHost: app\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /echo/smuggled HTTP/1.1\r\nHost: app\r\n\r\n"},
			status: 400, details: "http1.content_length_and_chunked_not_allowed", neverApp: "GET /echo/smuggled"},
		{name: "TE and CL", parts: []string{"POST /echo/tecl HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGET /echo/smuggled2 HTTP/1.1\r\nHost: app\r\n\r\n0\r\n\r\n"},
			status: 400, details: "http1.content_length_and_chunked_not_allowed", neverApp: "GET /echo/smuggled2"},
		{name: "folded Transfer-Encoding", parts: []string{"POST /echo/fold HTTP/1.1\r\nHost: app\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 3\r\n\r\nabc"},
			status: 400, details: "http1.codec_error", lucid: "line folding", neverApp: "POST /echo/fold"},
		{name: "TE gzip, chunked", parts: []string{"POST /echo/gz HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"},
			status: 501, details: "http1.invalid_transfer_encoding", neverApp: "POST /echo/gz"},
		{name: "TE twice", parts: []string{"POST /echo/te2 HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n"},
			status: 501, details: "http1.invalid_transfer_encoding", neverApp: "POST /echo/te2"},
		{name: "TE xchunked", parts: []string{"POST /echo/tex HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"},
			status: 501, details: "http1.invalid_transfer_encoding", neverApp: "POST /echo/tex"},
		{name: "whitespace before the colon", parts: []string{"POST /echo/ws HTTP/1.1\r\nHost: app\r\nTransfer-Encoding : chunked\r\nContent-Length: 3\r\n\r\nabc"},
			status: 400, details: "http1.codec_error", neverApp: "POST /echo/ws"},
		{name: "two differing Content-Lengths", parts: []string{"POST /echo/cl2 HTTP/1.1\r\nHost: app\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde"},
			status: 400, details: "http1.codec_error", neverApp: "POST /echo/cl2"},
		{name: "Content-Length list", parts: []string{"POST /echo/cll HTTP/1.1\r\nHost: app\r\nContent-Length: 3, 3\r\n\r\nabc"},
			status: 400, details: "http1.codec_error", neverApp: "POST /echo/cll"},
		{name: "negative Content-Length", parts: []string{"POST /echo/neg HTTP/1.1\r\nHost: app\r\nContent-Length: -1\r\n\r\n"},
			status: 400, details: "http1.codec_error", neverApp: "POST /echo/neg"},
		{name: "bare LF line endings", parts: []string{"GET /echo/lf HTTP/1.1\nHost: app\n\n"},
			status: 400, details: "http1.codec_error", neverApp: "GET /echo/lf"},
		{name: "pipelined requests are each answered in order", parts: []string{"POST /echo/p1 HTTP/1.1\r\nHost: app\r\nContent-Length: 5\r\n\r\nhelloGET /echo/p2 HTTP/1.1\r\nHost: app\r\n\r\n"},
			status: 200, open: true, appSaw: "GET /echo/p2"},

		// Versions and targets.
		{name: "HTTP/1.0", parts: []string{"GET /echo/old HTTP/1.0\r\nHost: app\r\n\r\n"},
			status: 426, details: "low_version", neverApp: "GET /echo/old"},
		{name: "HTTP/0.9", parts: []string{"GET /echo/ancient\r\n"}, status: 400, details: "http1.codec_error"},
		{name: "fragment is cut", parts: []string{"GET /echo/frag#section HTTP/1.1\r\nHost: app\r\n\r\n"},
			status: 200, open: true, appSaw: "GET /echo/frag", neverApp: "GET /echo/frag%23section"},
		{name: "missing Host", parts: []string{"GET /echo/nohost HTTP/1.1\r\n\r\n"}, status: 400, details: "missing_host_header"},
		{name: "two Hosts", parts: []string{"GET /echo/hosts HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"}, status: 400},
		{name: "NUL in a header value", parts: []string{"GET /echo/nul HTTP/1.1\r\nHost: app\r\nX-A: a\x00b\r\n\r\n"},
			status: 400, details: "http1.invalid_characters"},
		{name: "garbage", parts: []string{"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"}, status: 400, details: "http1.codec_error"},
	}
}

// TestRawHTTP1 runs every conformance case against the gateway's listener (the mesh's
// front door: gateway → sidecar → app) and the sidecar's inbound listener (sidecar → app).
func TestRawHTTP1(t *testing.T) {
	m := theMesh(t)
	for _, l := range []struct{ name, addr, proxy string }{{"gateway", gwListen, "gw"}, {"sidecar", sidecarIn, "app"}} {
		t.Run(l.name, func(t *testing.T) {
			for _, c := range conformance() {
				if c.defaultLimits && l.proxy != "gw" {
					continue
				}
				t.Run(c.name, func(t *testing.T) { runRaw(t, m, l.addr, l.proxy, c) })
			}
		})
	}
}

// TestConfiguredLimits: the sidecar's ProxyConfig raises the header limits (runtimeValues
// max_request_headers_count 150, max_request_headers_size_kb 96, as Istio configures
// Envoy's), and its listener applies them, with a reply naming the limit in force.
func TestConfiguredLimits(t *testing.T) {
	m := theMesh(t)
	big := func(kb int) string { return strings.Repeat("a", kb<<10) }
	for _, c := range []rawCase{
		{name: "101 headers under a limit of 150", parts: []string{"GET /echo/l101 HTTP/1.1\r\nHost: app\r\n" + headers(100) + "\r\n"},
			status: 200, open: true, appSaw: "GET /echo/l101"},
		{name: "151 headers", parts: []string{"GET /echo/l151 HTTP/1.1\r\nHost: app\r\n" + headers(150) + "\r\n"},
			status: 431, details: "http1.too_many_headers", lucid: "max_headers_count (150)", neverApp: "GET /echo/l151"},
		{name: "61 KiB under a limit of 96 KiB", parts: []string{"GET /echo/l61 HTTP/1.1\r\nHost: app\r\nX-Big: " + big(61) + "\r\n\r\n"},
			status: 200, open: true, appSaw: "GET /echo/l61"},
		{name: "97 KiB", parts: []string{"GET /echo/l97 HTTP/1.1\r\nHost: app\r\nX-Big: " + big(97) + "\r\n\r\n"},
			status: 431, details: "http1.headers_too_large", lucid: "max_request_headers_kb (96 KiB", neverApp: "GET /echo/l97"},
	} {
		t.Run(c.name, func(t *testing.T) { runRaw(t, m, sidecarIn, "app", c) })
	}
}

// TestIdleTimeout: a keep-alive connection with no request is closed after the downstream
// idle timeout (Envoy's idle_timeout, 1 h by default; the gateway's ProxyConfig sets 1.5 s
// with ISTIO_META_IDLE_TIMEOUT).
func TestIdleTimeout(t *testing.T) {
	m := theMesh(t)
	c, err := net.DialTimeout("tcp", gwListen, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /echo/idle HTTP/1.1\r\nHost: app\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	start := time.Now()
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("the gateway sent bytes on an idle connection")
	}
	if d := time.Since(start); d < time.Second || d > 5*time.Second {
		t.Errorf("the idle connection closed after %v, want about 1.5 s", d)
	}
	m.settled(t, "idle connection")
}

func runRaw(t *testing.T, m *mesh, addr, proxy string, c rawCase) {
	t.Helper()
	var wait func()
	if c.waitApp != "" {
		wait = func() {
			if err := testutil.Poll(3*time.Second, func() error {
				if !m.app.saw(c.waitApp) {
					return fmt.Errorf("the app has not seen %s", c.waitApp)
				}
				return nil
			}); err != nil {
				t.Error(err)
			}
		}
	}
	r := send(addr, c.parts, wait)
	if r.err != nil {
		t.Fatalf("exchange: %v", r.err)
	}
	switch {
	case c.status == 0 && (r.status != 0 || !r.closed):
		t.Errorf("got %d (closed %v), want the connection closed without an answer", r.status, r.closed)
	case r.status != c.status:
		t.Errorf("got %d %q (x-lucid-error %q), want %d", r.status, r.body, r.header.Get("X-Lucid-Error"), c.status)
	}
	if c.status >= 400 {
		if r.closed != true {
			t.Errorf("the connection stayed open after %d", r.status)
		}
		if want := http.StatusText(c.status); r.body != want && c.status != http.StatusLoopDetected {
			t.Errorf("body %q, want Envoy's %q", r.body, want)
		}
		if e := r.header.Get("X-Lucid-Error"); !strings.HasPrefix(e, "DPE: ") || !strings.Contains(e, c.lucid) {
			t.Errorf("x-lucid-error %q, want DPE and %q", e, c.lucid)
		}
	}
	if c.status > 0 && c.status < 400 && r.closed == c.open {
		t.Errorf("connection closed: %v, want %v", r.closed, !c.open)
	}
	if c.details != "" {
		m.accessLog(t, proxy, fmt.Sprintf(" %d DPE %s ", c.status, c.details))
	}
	if c.appSaw != "" && !m.app.saw(c.appSaw) {
		t.Errorf("the app never saw %s", c.appSaw)
	}
	if c.neverApp != "" && m.app.saw(c.neverApp) {
		t.Errorf("%s reached the app", c.neverApp)
	}
	m.settled(t, c.name)
}
