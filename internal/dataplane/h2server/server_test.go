package h2server_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/h2server"
	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
)

// TestRequest: the handler sees the request as net/http's HTTP/2 server gives it, and a
// small answer arrives with its Content-Length.
func TestRequest(t *testing.T) {
	s := &h2server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen", fmt.Sprintf("%s %s %s %s cl=%d q=%s rem=%v", r.Proto, r.Method, r.Host, r.RequestURI, r.ContentLength, r.URL.Query().Get("a"), r.RemoteAddr != ""))
		w.Header().Set("X-Hdr", r.Header.Get("X-Custom"))
		_, _ = io.WriteString(w, "hello")
	})}
	addr := serve(t, s)
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/p/x?a=1", nil)
	req.Host = "example.test"
	req.Header.Set("X-Custom", "v1")
	resp, err := h2c(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if got, want := resp.Header.Get("X-Seen"), "HTTP/2.0 GET example.test /p/x?a=1 cl=0 q=1 rem=true"; got != want {
		t.Errorf("handler saw %q, want %q", got, want)
	}
	if resp.Header.Get("X-Hdr") != "v1" || string(body) != "hello" || resp.ContentLength != 5 || resp.Header.Get("Date") == "" {
		t.Errorf("answer: header %v, body %q, content length %d", resp.Header, body, resp.ContentLength)
	}
}

// TestLargeBodies: 8 MiB each way through both flow-control windows.
func TestLargeBodies(t *testing.T) {
	s := &h2server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("X-Sum", fmt.Sprintf("%x %d", h.Sum(nil), n))
		chunk := bytes.Repeat([]byte("abcdefgh"), 4096)
		for range 256 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})}
	addr := serve(t, s)
	in := bytes.Repeat([]byte("0123456789abcdef"), 512<<10)
	resp, err := h2c(t).Post("http://"+addr+"/", "application/octet-stream", bytes.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%x %d", sha256.Sum256(in), len(in)); resp.Header.Get("X-Sum") != want {
		t.Errorf("server read %q, want %q", resp.Header.Get("X-Sum"), want)
	}
	if len(out) != 256*32768 || !bytes.Equal(out[:64], bytes.Repeat([]byte("abcdefgh"), 8)) {
		t.Errorf("client read %d bytes", len(out))
	}
}

// TestTrailers: request trailers reach the handler after its body; response trailers,
// declared or set with http.TrailerPrefix, reach the client.
func TestTrailers(t *testing.T) {
	s := &h2server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Trailer", "X-Declared")
		w.WriteHeader(200)
		_, _ = io.WriteString(w, "body")
		w.(http.Flusher).Flush()
		w.Header().Set("X-Declared", "d:"+r.Trailer.Get("X-Req-Trailer"))
		w.Header().Set(http.TrailerPrefix+"X-Late", "late")
	})}
	addr := serve(t, s)
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/", io.MultiReader(strings.NewReader("abc")))
	req.Trailer = http.Header{"X-Req-Trailer": nil}
	req.Body = &trailerBody{r: strings.NewReader("abc"), set: func() { req.Trailer.Set("X-Req-Trailer", "rt") }}
	resp, err := h2c(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "body" || resp.Trailer.Get("X-Declared") != "d:rt" || resp.Trailer.Get("X-Late") != "late" {
		t.Errorf("body %q, trailers %v", body, resp.Trailer)
	}
	if resp.Header.Get("X-Declared") != "" {
		t.Errorf("the declared trailer went out in the head: %v", resp.Header)
	}
}

// trailerBody sets the request's trailer when its body has been read.
type trailerBody struct {
	r   io.Reader
	set func()
}

func (b *trailerBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		b.set()
	}
	return n, err
}

func (b *trailerBody) Close() error { return nil }

// A handler may adopt a header map as its response's before setting anything: its fields
// go out and the map stays the handler's for trailers. Once a field is set, adopting is
// refused. The map's owner is told to recycle it once the stream is finished, and only
// when the handler released its request.
func TestAdoptHeader(t *testing.T) {
	type adopter interface {
		AdoptHeader(http.Header, interface{ Recycle() }) bool
	}
	type releaser interface{ ReleaseRequest() }
	var mu sync.Mutex
	recycled := map[string]int{}
	s := &h2server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := w.(adopter)
		path := r.URL.Path
		if path == "/set-first" {
			w.Header().Set("X-Own", "1")
			if a.AdoptHeader(http.Header{"X-Up": {"1"}}, nil) {
				t.Error("a response with a field set adopted a header map")
			}
			return
		}
		up := http.Header{"X-Up": {"1"}, "Trailer": {"X-Sum"}}
		// Recycling empties the map, as a reuse would: a head or trailers encoded after it
		// would lose their fields.
		owner := recycleFunc(func() {
			mu.Lock()
			recycled[path]++
			mu.Unlock()
			clear(up)
		})
		if !a.AdoptHeader(up, owner) {
			t.Error("a fresh response refused to adopt a header map")
		}
		up.Set("X-Added", "2")
		_, _ = io.WriteString(w, "adopted")
		w.Header().Set("X-Sum", "3")
		if path == "/adopt" {
			w.(releaser).ReleaseRequest()
		}
	})}
	addr := serve(t, s)
	// get returns the answer's header, trailer and body.
	get := func(path string) (http.Header, http.Header, string) {
		resp, err := h2c(t).Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.Header, resp.Trailer, string(b)
	}
	for _, path := range []string{"/adopt", "/adopt-kept"} {
		h, tr, body := get(path)
		if h.Get("X-Up") != "1" || h.Get("X-Added") != "2" || tr.Get("X-Sum") != "3" || body != "adopted" {
			t.Fatalf("%s: adopted answer: header %v trailer %v body %q", path, h, tr, body)
		}
	}
	if h, _, _ := get("/set-first"); h.Get("X-Own") != "1" || h.Get("X-Up") != "" {
		t.Fatalf("answer that set a field first: header %v", h)
	}
	// The client has the end of /adopt's stream before its handler's goroutine may have
	// recycled: wait for it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		a, k := recycled["/adopt"], recycled["/adopt-kept"]
		mu.Unlock()
		if a == 1 && k == 0 {
			break
		}
		if a > 1 || k > 0 || time.Now().After(deadline) {
			t.Fatalf("recycled /adopt %d times, /adopt-kept %d; want once, and never (request not released)", a, k)
		}
		time.Sleep(time.Millisecond)
	}
}

// recycleFunc is an AdoptHeader owner.
type recycleFunc func()

func (f recycleFunc) Recycle() { f() }

// A :path with sub-delimiters keeps its spelling (URL.RawPath), as net/http's server
// parses it: the proxy forwards EscapedPath, which would otherwise escape them.
func TestPathKeepsItsSpelling(t *testing.T) {
	s := &h2server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Escaped", r.URL.EscapedPath()+" "+r.URL.Path+" "+r.URL.RawQuery)
	})}
	addr := serve(t, s)
	for target, want := range map[string]string{
		"/Products('a')!*(1)?q=1": "/Products('a')!*(1) /Products('a')!*(1) q=1",
		"/plain/path?x":           "/plain/path /plain/path x",
		"/a%2Fb":                  "/a%2Fb /a/b ",
	} {
		resp, err := h2c(t).Get("http://" + addr + target)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("X-Escaped"); got != want {
			t.Errorf("%s: handler saw %q, want %q", target, got, want)
		}
	}
}

// A stream whose handler calls ReleaseRequest lends its memory to a later stream, which
// starts clean (no field, URL or context of the one before); a handler that does not call
// it keeps its request as it was, whatever the connection serves next. (Released memory
// goes through a sync.Pool, which may drop it: the test looks for a reuse over a few
// requests.)
func TestReleasedRequestServesTheNext(t *testing.T) {
	type seen struct {
		req    *http.Request
		path   string
		fields string
		ctxErr error // while the handler ran
	}
	got := make(chan seen, 8)
	addr := serve(t, &h2server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var keys []string
		for k := range r.Header {
			if strings.HasPrefix(k, "X-") {
				keys = append(keys, k)
			}
		}
		got <- seen{r, r.URL.Path, strings.Join(keys, ","), r.Context().Err()}
		if r.URL.Query().Get("release") == "1" {
			w.(interface{ ReleaseRequest() }).ReleaseRequest()
		}
	})})
	client := h2c(t)
	send := func(target, field string) seen {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+target, nil)
		req.Header.Set(field, "v")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		return <-got
	}
	kept := send("/kept?release=0", "X-Kept")
	released := map[*http.Request]bool{}
	reused := false
	for i := range 40 {
		path := fmt.Sprintf("/r%d", i)
		field := fmt.Sprintf("X-F%d", i)
		s := send(path+"?release=1", field)
		if s.req == kept.req {
			t.Fatal("a request kept by its handler served a later stream")
		}
		if s.path != path || s.fields != field || s.ctxErr != nil {
			t.Fatalf("stream %d sees path %q, fields %q, context %v; want %s, %s, live", i, s.path, s.fields, s.ctxErr, path, field)
		}
		if released[s.req] {
			reused = true
		}
		released[s.req] = true
	}
	if !reused {
		t.Error("no released stream's memory served a later stream in 40 requests")
	}
	if kept.req.URL.Path != "/kept" || kept.req.Header.Get("X-Kept") != "v" ||
		kept.req.Context().Err() == nil {
		t.Errorf("a kept request changed after later ones: %q %v, cancelled %v", kept.req.URL.Path, kept.req.Header, kept.req.Context().Err())
	}
	for k := range kept.req.Header {
		if strings.HasPrefix(k, "X-F") {
			t.Errorf("a kept request got a later request's field %s", k)
		}
	}
}

// TestRepeatedFields: a name that comes more than once keeps every value, in the order
// received (cookies joined with "; " as RFC 9113 8.2.3 says), and a host field that
// repeats :authority is taken out of the map, alone or among repeats.
func TestRepeatedFields(t *testing.T) {
	s := &h2server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen", fmt.Sprintf("%q %q %q host=%q %d", r.Header.Values("X-Multi"), r.Header.Values("Cookie"), r.Header.Values("X-One"), r.Host, len(r.Header)))
	})}
	r := dialRaw(t, serve(t, s))
	cases := []struct {
		fields []string
		want   string
	}{
		{[]string{"x-one", "1"}, `[] [] ["1"] host="a.test" 1`},
		{[]string{"x-multi", "1", "cookie", "a=1", "x-one", "1", "x-multi", "2", "cookie", "b=2", "x-multi", "3"},
			`["1" "2" "3"] ["a=1; b=2"] ["1"] host="a.test" 3`},
		{[]string{"host", "a.test", "x-multi", "1", "x-multi", "2"}, `["1" "2"] [] [] host="a.test" 1`},
	}
	id := uint32(1)
	for _, tc := range cases {
		r.get(id, "/", tc.fields...)
		got := r.answerField(id, "x-seen")
		if want := "200 " + tc.want; got != want {
			t.Errorf("fields %q: %s, want %s", tc.fields, got, want)
		}
		id += 2
	}
}

// TestPrefixedTrailerBeforeTheHead: a trailer set with http.TrailerPrefix by a handler
// that returns before anything was sent goes out as a trailer, not in the head; a Date
// the handler set is the head's only one, and a head without one gets the server's.
func TestPrefixedTrailerBeforeTheHead(t *testing.T) {
	s := &h2server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/date" {
			w.Header().Set("Date", "Mon, 01 Jan 2024 00:00:00 GMT")
		}
		_, _ = io.WriteString(w, "body")
		w.Header().Set(http.TrailerPrefix+"X-Late", "late")
	})}
	addr := serve(t, s)
	for _, path := range []string{"/", "/date"} {
		resp, err := h2c(t).Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "body" || resp.Trailer.Get("X-Late") != "late" || resp.Header.Get("X-Late") != "" {
			t.Errorf("%s: body %q, head %v, trailers %v", path, body, resp.Header, resp.Trailer)
		}
		dates := resp.Header.Values("Date")
		if path == "/date" && (len(dates) != 1 || dates[0] != "Mon, 01 Jan 2024 00:00:00 GMT") ||
			path == "/" && (len(dates) != 1 || dates[0] == "Mon, 01 Jan 2024 00:00:00 GMT") {
			t.Errorf("%s: Date %q", path, dates)
		}
	}
}

// TestRequestFields: the stream says which of http1.FieldOf's names the request had, so a
// handler can skip the lookups of those it did not.
func TestRequestFields(t *testing.T) {
	s := &h2server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fr, ok := w.(interface{ RequestFields() http1.FieldSet })
		if !ok {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		f := fr.RequestFields()
		w.Header().Set("X-Seen", fmt.Sprintf("ua=%v id=%v xff=%v ct=%v", f&http1.FieldUserAgent != 0, f&http1.FieldXRequestID != 0,
			f&http1.FieldXForwardedFor != 0, f&http1.FieldContentType != 0))
	})}
	r := dialRaw(t, serve(t, s))
	for i, tc := range []struct {
		fields []string
		want   string
	}{
		{[]string{"user-agent", "a", "x-request-id", "1"}, "ua=true id=true xff=false ct=false"},
		{[]string{"x-forwarded-for", "10.0.0.1", "content-type", "text/plain", "x-other", "o"}, "ua=false id=false xff=true ct=true"},
		{nil, "ua=false id=false xff=false ct=false"}, // a reused stream's set starts empty
	} {
		id := uint32(2*i + 1)
		r.get(id, "/", tc.fields...)
		got := r.answerField(id, "x-seen")
		if want := "200 " + tc.want; got != want {
			t.Errorf("fields %q: %s, want %s", tc.fields, got, want)
		}
	}
}
