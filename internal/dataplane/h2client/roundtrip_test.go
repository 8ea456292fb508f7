package h2client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func newReq(ctx context.Context, t testing.TB, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func readAll(t testing.TB, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body: %v", err)
	}
	return string(b)
}

// The server sees the request as net/http's client would send it: :authority from Host,
// lowercase fields, connection-specific fields dropped, te: trailers kept, Content-Length
// from the request; the client sees the status, headers and body.
func TestRoundTripHeaders(t *testing.T) {
	addr := startServer(t, 0, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Host", r.Host)
		w.Header().Set("X-Te", r.Header.Get("Te"))
		w.Header().Set("X-Conn", r.Header.Get("Connection")+r.Header.Get("Keep-Alive"))
		w.Header().Set("X-Custom", strings.Join(r.Header.Values("X-Custom"), ","))
		w.Header().Set("X-Path", r.URL.RequestURI())
		w.Header().Set("X-Len", fmt.Sprint(r.ContentLength))
		w.Header().Add("X-Multi", "a")
		w.Header().Add("X-Multi", "b")
		b, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusCreated)
		_, _ = fmt.Fprintf(w, "%s %s %s", r.Proto, r.Method, b)
	})
	cc := dial(t, addr, Config{})
	req := newReq(t.Context(), t, http.MethodPost, "http://"+addr+"/p?q=1", strings.NewReader("hello"))
	req.Host = "svc.example:8080"
	req.Header.Set("Te", "trailers")
	req.Header.Set("Connection", "keep-alive")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Add("X-Custom", "1")
	req.Header.Add("X-Custom", "2")
	resp, err := cc.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusCreated || resp.Proto != "HTTP/2.0" || body != "HTTP/2.0 POST hello" {
		t.Fatalf("got %d %s %q", resp.StatusCode, resp.Proto, body)
	}
	want := map[string]string{"X-Host": "svc.example:8080", "X-Te": "trailers", "X-Conn": "", "X-Custom": "1,2", "X-Path": "/p?q=1", "X-Len": "5"}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	if got := resp.Header.Values("X-Multi"); len(got) != 2 {
		t.Errorf("X-Multi %q, want two values", got)
	}
}

// Bodies larger than every flow-control window go both ways (the sender waits for
// WINDOW_UPDATE, the receiver sends them as the body is read), with known and unknown
// lengths.
func TestLargeBodiesBothWays(t *testing.T) {
	addr := startServer(t, 0, func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		w.Header().Set("X-Sum", fmt.Sprintf("%x", h.Sum(nil)))
		w.Header().Set("X-N", fmt.Sprint(n))
		_, _ = io.Copy(w, io.LimitReader(zeros{}, 9<<20))
	})
	cc := dial(t, addr, Config{})
	payload := bytes.Repeat([]byte("0123456789abcdef"), 6<<16) // 6 MiB
	sum := fmt.Sprintf("%x", sha256.Sum256(payload))
	for _, known := range []bool{true, false} {
		t.Run(fmt.Sprintf("known length %v", known), func(t *testing.T) {
			var body io.Reader = bytes.NewReader(payload)
			if !known {
				body = io.MultiReader(body) // hides the length
			}
			resp, err := cc.RoundTrip(newReq(t.Context(), t, http.MethodPut, "http://"+addr+"/", body))
			if err != nil {
				t.Fatal(err)
			}
			got := readAll(t, resp)
			if resp.Header.Get("X-Sum") != sum || resp.Header.Get("X-N") != fmt.Sprint(len(payload)) {
				t.Fatalf("server got %s bytes summing %s, want %d and %s", resp.Header.Get("X-N"), resp.Header.Get("X-Sum"), len(payload), sum)
			}
			if len(got) != 9<<20 {
				t.Fatalf("response of %d bytes, want %d", len(got), 9<<20)
			}
		})
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// Request trailers follow the body; response trailers are in resp.Trailer at EOF, both
// those announced and those that were not.
func TestTrailers(t *testing.T) {
	addr := startServer(t, 0, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Trailer", "X-Announced")
		_, _ = io.WriteString(w, "body")
		w.Header().Set("X-Announced", "a")
		w.Header().Set(http.TrailerPrefix+"X-Late", "l")
		w.Header().Set(http.TrailerPrefix+"X-Echo", r.Trailer.Get("X-Req-Trailer"))
	})
	cc := dial(t, addr, Config{})
	req := newReq(t.Context(), t, http.MethodPost, "http://"+addr+"/", io.MultiReader(strings.NewReader("data")))
	req.Trailer = http.Header{"X-Req-Trailer": nil}
	req.Body = &trailerSetter{ReadCloser: req.Body, set: func() { req.Trailer.Set("X-Req-Trailer", "sent") }}
	resp, err := cc.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := resp.Trailer["X-Announced"]; !ok {
		t.Fatalf("announced trailer missing before the body: %v", resp.Trailer)
	}
	if body := readAll(t, resp); body != "body" {
		t.Fatalf("body %q", body)
	}
	for k, v := range map[string]string{"X-Announced": "a", "X-Late": "l", "X-Echo": "sent"} {
		if got := resp.Trailer.Get(k); got != v {
			t.Errorf("trailer %s %q, want %q (all: %v)", k, got, v, resp.Trailer)
		}
	}
}

// trailerSetter sets the request trailers when the body ends, as a proxy does once the
// downstream's arrive.
type trailerSetter struct {
	io.ReadCloser
	set  func()
	once sync.Once
}

func (b *trailerSetter) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.once.Do(b.set)
	}
	return n, err
}

// A streaming request body runs concurrently with the response: RoundTrip returns at the
// response headers, and each line sent is answered before the next is written.
func TestBidiStreaming(t *testing.T) {
	addr := startServer(t, 0, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		sc := bufio.NewScanner(r.Body)
		for sc.Scan() {
			_, _ = fmt.Fprintf(w, "echo %s\n", sc.Text())
			w.(http.Flusher).Flush()
		}
	})
	cc := dial(t, addr, Config{})
	pr, pw := io.Pipe()
	resp, err := cc.RoundTrip(newReq(t.Context(), t, http.MethodPost, "http://"+addr+"/", pr))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for i := range 3 {
		if _, err := fmt.Fprintf(pw, "m%d\n", i); err != nil {
			t.Fatal(err)
		}
		line, err := br.ReadString('\n')
		if err != nil || line != fmt.Sprintf("echo m%d\n", i) {
			t.Fatalf("line %q, %v", line, err)
		}
	}
	_ = pw.Close()
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Fatalf("after the request ended: %q, %v", rest, err)
	}
}

// The server's SETTINGS_MAX_CONCURRENT_STREAMS holds: Available counts down, the state
// hook runs as streams end, and a request beyond the limit waits for a stream to end.
func TestMaxConcurrentStreams(t *testing.T) {
	release := make(chan struct{})
	var active, peak atomic.Int64
	entered := make(chan struct{}, 3)
	addr := startServer(t, 2, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			entered <- struct{}{}
		}
		n := active.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		if r.URL.Path == "/hold" {
			<-release
		}
		active.Add(-1)
	})
	var hooked atomic.Int64
	cc := dial(t, addr, Config{StateHook: func(*ClientConn) { hooked.Add(1) }})
	// The first request makes sure the server's SETTINGS arrived.
	resp, err := cc.RoundTrip(newReq(t.Context(), t, http.MethodGet, "http://"+addr+"/", nil))
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if got := cc.Available(); got != 2 {
		t.Fatalf("Available %d, want the server's 2", got)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	started := make(chan struct{}, 3)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			started <- struct{}{}
			resp, err := cc.RoundTrip(newReq(context.Background(), t, http.MethodGet, "http://"+addr+"/hold", nil))
			if err != nil {
				errs <- err
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}()
	}
	for range 3 {
		<-started
	}
	<-entered
	<-entered
	if got := cc.Available(); got != 0 {
		t.Fatalf("Available %d with the server's 2 streams open, want 0", got)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if p := peak.Load(); p > 2 {
		t.Fatalf("the server saw %d concurrent streams, over its limit of 2", p)
	}
	if got := cc.Available(); got != 2 {
		t.Fatalf("Available %d after the streams ended, want 2", got)
	}
	if hooked.Load() < 4 {
		t.Fatalf("state hook ran %d times, want at least once per ended stream", hooked.Load())
	}
}

// Cancelling the request context resets the stream: the server's handler sees its
// context end, and RoundTrip returns the context's error.
func TestContextCancelResetsStream(t *testing.T) {
	gone := make(chan struct{})
	arrived := make(chan struct{})
	addr := startServer(t, 0, func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-r.Context().Done()
		close(gone)
	})
	cc := dial(t, addr, Config{})
	ctx, cancel := context.WithCancel(t.Context())
	go func() { <-arrived; cancel() }()
	err := roundTripErr(cc, newReq(ctx, t, http.MethodGet, "http://"+addr+"/", nil))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	<-gone // the handler's context ended: the server got RST_STREAM
	// The connection goes on serving.
	if cc.Err() != nil {
		t.Fatalf("connection unusable after a cancelled stream: %v", cc.Err())
	}
}

// Closing the response body before its end resets the stream (the server's write fails)
// and gives the connection window back: later requests still get their bodies.
func TestBodyCloseBeforeEOF(t *testing.T) {
	writeFailed := make(chan error, 1)
	addr := startServer(t, 0, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/small" {
			_, _ = io.WriteString(w, "ok")
			return
		}
		buf := make([]byte, 32<<10)
		for {
			if _, err := w.Write(buf); err != nil {
				writeFailed <- err
				return
			}
		}
	})
	cc := dial(t, addr, Config{})
	resp, err := cc.RoundTrip(newReq(t.Context(), t, http.MethodGet, "http://"+addr+"/big", nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if err := <-writeFailed; err == nil {
		t.Fatal("server write did not fail")
	}
	if _, err := resp.Body.Read(make([]byte, 1)); err == nil {
		t.Fatal("read after Close succeeded")
	}
	resp, err = cc.RoundTrip(newReq(t.Context(), t, http.MethodGet, "http://"+addr+"/small", nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, resp); got != "ok" {
		t.Fatalf("next request's body %q", got)
	}
}

// HEAD and 204 answers have no body; Content-Length is reported as sent.
func TestNoBodyResponses(t *testing.T) {
	addr := startServer(t, 0, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/204" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Length", "42")
	})
	cc := dial(t, addr, Config{})
	resp, err := cc.RoundTrip(newReq(t.Context(), t, http.MethodHead, "http://"+addr+"/", nil))
	if err != nil {
		t.Fatal(err)
	}
	if b := readAll(t, resp); b != "" || resp.ContentLength != 42 {
		t.Fatalf("HEAD: body %q, length %d", b, resp.ContentLength)
	}
	resp, err = cc.RoundTrip(newReq(t.Context(), t, http.MethodGet, "http://"+addr+"/204", nil))
	if err != nil {
		t.Fatal(err)
	}
	if b := readAll(t, resp); b != "" || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("204: body %q, status %d", b, resp.StatusCode)
	}
}

// A request the client refuses to encode fails before anything is written, and the
// connection stays usable (HPACK state untouched).
func TestInvalidRequest(t *testing.T) {
	addr := startServer(t, 0, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, r.Header.Get("X-Ok")) })
	cc := dial(t, addr, Config{})
	req := newReq(t.Context(), t, http.MethodGet, "http://"+addr+"/", nil)
	req.Header.Set("X-Ok", "1")
	req.Header["Bad Name"] = []string{"v"}
	if err := roundTripErr(cc, req); err == nil || HeadersWritten(err) {
		t.Fatalf("error %v, want one before the headers were written", err)
	}
	delete(req.Header, "Bad Name")
	for _, v := range []string{"a\x00b", "0123456789\r\nx", "del\x7f"} {
		req.Header.Set("X-Bad", v)
		if err := roundTripErr(cc, req); err == nil || HeadersWritten(err) {
			t.Fatalf("value %q: error %v, want one before the headers were written", v, err)
		}
	}
	req.Header.Set("X-Bad", "tab\tand 8-bit \xff is fine")
	if resp, err := cc.RoundTrip(req); err != nil {
		t.Fatal(err)
	} else {
		readAll(t, resp)
	}
	delete(req.Header, "X-Bad")
	resp, err := cc.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, resp); got != "1" {
		t.Fatalf("body %q", got)
	}
}

// The request's User-Agent is sent as it is; without one the client sends net/http's,
// and an empty one sends none.
func TestUserAgent(t *testing.T) {
	addr := startServer(t, 0, func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprintf(w, "%q", r.Header.Values("User-Agent"))
	})
	cc := dial(t, addr, Config{})
	for _, tc := range []struct {
		ua   []string
		want string
	}{
		{nil, `["Go-http-client/2.0"]`},
		{[]string{"ua/1"}, `["ua/1"]`},
		{[]string{""}, `[]`},
	} {
		req := newReq(t.Context(), t, http.MethodGet, "http://"+addr+"/", nil)
		req.Header.Set("X-Other", "1")
		if tc.ua != nil {
			req.Header["User-Agent"] = tc.ua
		}
		resp, err := cc.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, resp); got != tc.want {
			t.Errorf("User-Agent %q: the server saw %s, want %s", tc.ua, got, tc.want)
		}
	}
}

// Informational answers (103 Early Hints, 100 Continue) reach httptrace's Got1xxResponse;
// RoundTrip returns the final response.
func TestInformationalResponses(t *testing.T) {
	addr := startServer(t, 0, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		_, _ = io.WriteString(w, "final")
	})
	cc := dial(t, addr, Config{})
	var got []string
	ctx := httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			got = append(got, fmt.Sprint(code, " ", h.Get("Link")))
			return nil
		},
	})
	resp, err := cc.RoundTrip(newReq(ctx, t, http.MethodGet, "http://"+addr+"/", nil))
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); body != "final" || resp.StatusCode != http.StatusOK {
		t.Fatalf("final response %d %q", resp.StatusCode, body)
	}
	if len(got) != 1 || got[0] != "103 </style.css>; rel=preload" {
		t.Fatalf("1xx seen: %q", got)
	}
}

// Header blocks larger than a frame go as HEADERS and CONTINUATION frames both ways.
func TestLargeHeaderBlocks(t *testing.T) {
	big := strings.Repeat("v", 40<<10)
	addr := startServer(t, 0, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Big", r.Header.Get("X-Big"))
	})
	cc := dial(t, addr, Config{})
	req := newReq(t.Context(), t, http.MethodGet, "http://"+addr+"/", nil)
	req.Header.Set("X-Big", big)
	resp, err := cc.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if got := resp.Header.Get("X-Big"); got != big {
		t.Fatalf("echoed header of %d bytes, want %d", len(got), len(big))
	}
}

// :path is the request URL's RequestURI(), whether it goes as one string or as path and
// query written side by side.
func TestPathSent(t *testing.T) {
	addr := startServer(t, 0, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Path", r.RequestURI)
	})
	cc := dial(t, addr, Config{})
	for _, target := range []string{"/p?q=1", "/p?", "/p", "/a%2Fb?x=%20y", "/Products('a')?$top=1&b", "/?"} {
		req := newReq(t.Context(), t, http.MethodGet, "http://"+addr+target, nil)
		resp, err := cc.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		if got, want := resp.Header.Get("X-Path"), req.URL.RequestURI(); got != want {
			t.Errorf("%s: server saw :path %q, want %q", target, got, want)
		}
	}
	// An opaque URL (a proxy's absolute form) keeps its path, and its query.
	req := newReq(t.Context(), t, http.MethodGet, "http://"+addr+"/x", nil)
	req.URL.Opaque, req.URL.RawQuery = "//"+addr+"/opaque/path", "k=v"
	resp, err := cc.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if got := resp.Header.Get("X-Path"); got != "/opaque/path?k=v" {
		t.Errorf("opaque URL: server saw :path %q, want /opaque/path?k=v", got)
	}
}

// content-length goes with a body of known length and with an empty POST, PUT or PATCH
// (as net/http's client sends it), not with a GET or a streamed body.
func TestContentLengthSent(t *testing.T) {
	addr := startServer(t, 0, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Cl", strings.Join(r.Header.Values("Content-Length"), ","))
	})
	cc := dial(t, addr, Config{})
	for _, tc := range []struct {
		method string
		body   io.Reader
		want   string
	}{
		{http.MethodGet, nil, ""},
		{http.MethodPost, http.NoBody, "0"},
		{http.MethodPut, strings.NewReader("hello"), "5"},
		{http.MethodPost, strings.NewReader(strings.Repeat("x", 100<<10)), "102400"},
		{http.MethodPost, io.MultiReader(strings.NewReader("streamed")), ""},
	} {
		req := newReq(t.Context(), t, tc.method, "http://"+addr+"/", tc.body)
		resp, err := cc.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		if got := resp.Header.Get("X-Cl"); got != tc.want {
			t.Errorf("%s with a %T body: content-length %q, want %q", tc.method, tc.body, got, tc.want)
		}
	}
}
