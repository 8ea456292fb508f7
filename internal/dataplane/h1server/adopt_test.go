package h1server_test

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/h1server"
	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

// fieldsAdopter is h1server's way to take an upstream answer's fields without a map.
type fieldsAdopter interface {
	AdoptFields([]http1.ReceivedField, interface{ Recycle() }) bool
	AddField(name, value string)
	AddCleanField(name, value string)
}

// received is a head's fields as a parser puts them in a map: each value in a slot of its
// own (the map's one-value slice).
func received(kv ...string) (http.Header, receivedOwner) {
	vals := make([]string, len(kv)/2)
	h, rf := http.Header{}, receivedOwner{}
	for i := range vals {
		vals[i] = kv[2*i+1]
		h[kv[2*i]] = vals[i : i+1 : i+1]
		rf = append(rf, http1.ReceivedField{Key: kv[2*i], Value: vals[i], Slot: &vals[i]})
	}
	return h, rf
}

// countingOwner is a receivedOwner that counts its Recycle calls.
type countingOwner struct {
	receivedOwner
	mu *sync.Mutex
	n  *int
}

func (o countingOwner) Recycle() { o.mu.Lock(); *o.n++; o.mu.Unlock() }

// Adopted fields go out as received and in that order, then the fields added to them
// sorted by name, then Date (unless adopted) and nothing else: the adopted Content-Length
// frames the body, for HTTP/1.0 and HEAD too. A field the handler sets in Header() after
// adopting replaces the adopted one of its name; adopted fields also go on a 1xx head.
// Their owner recycles them once written, when the request was released.
func TestAdoptFields(t *testing.T) {
	var mu sync.Mutex
	recycled := 0
	big := strings.Repeat("b", 40<<10) // more than the server keeps before writing
	l, dial := serve(t, &h1server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := w.(fieldsAdopter)
		_, rf := received("Server", "up", "X-Zeta", "z", "Content-Length", "2", "X-Alpha", "a")
		owner := countingOwner{rf, &mu, &recycled}
		switch r.URL.Path {
		case "/dated":
			_, rf = received("Date", "Mon, 02 Jan 2006 15:04:05 GMT", "Content-Length", "2")
			owner.receivedOwner = rf
		case "/short":
			_, rf = received("Content-Length", "5")
			owner.receivedOwner = rf
		case "/big":
			_, rf = received("Content-Length", strconv.Itoa(len(big)))
			owner.receivedOwner = rf
		}
		if !a.AdoptFields(rf, owner) {
			t.Errorf("%s: adoption refused", r.URL.Path)
		}
		if a.AdoptFields(rf, owner) {
			t.Errorf("%s: adopted twice", r.URL.Path)
		}
		switch r.URL.Path {
		case "/set-after":
			w.Header().Set("X-Zeta", "new")
		case "/hints":
			w.WriteHeader(http.StatusEarlyHints)
		case "/late":
			// Set once the status is decided, before the head goes out: a trailer, as a
			// proxy announces one when the upstream fails mid-answer.
			w.WriteHeader(http.StatusOK)
			w.Header().Set(http.TrailerPrefix+"X-Sum", "3")
		case "/many":
			for _, n := range []string{"X-E", "X-D", "X-C"} {
				a.AddField(n, strings.ToLower(n))
			}
		}
		a.AddField("X-Own-B", "b")
		a.AddCleanField("X-Own-A", "a") // sorted with the others, as they are
		switch r.URL.Path {
		case "/parts":
			// The head goes out before the body (it is composed at the first Write): a
			// field set after that does not reach it, as with net/http.
			_, _ = io.WriteString(w, "o")
			w.Header().Set("X-After", "1")
			_, _ = io.WriteString(w, "k")
		case "/big":
			_, _ = io.WriteString(w, big)
		default:
			_, _ = io.WriteString(w, "ok")
		}
		w.(interface{ ReleaseRequest() }).ReleaseRequest()
	})})
	c := dial()
	br := bufio.NewReader(c)
	sent := []string{"Server: up", "X-Zeta: z", "Content-Length: 2", "X-Alpha: a"}
	own := []string{"X-Own-A: a", "X-Own-B: b"}
	cases := []struct {
		req  string
		want []string // the head's lines after the status line, Date left out
		body string
	}{
		{"GET / HTTP/1.1", slices.Concat(sent, own), "ok"},
		{"HEAD / HTTP/1.1", slices.Concat(sent, own), ""},
		{"GET / HTTP/1.0\r\nConnection: keep-alive", slices.Concat(sent, own, []string{"Connection: keep-alive"}), "ok"},
		{"GET /set-after HTTP/1.1", []string{"Server: up", "Content-Length: 2", "X-Alpha: a", "X-Own-A: a", "X-Own-B: b", "X-Zeta: new"}, "ok"},
		{"GET /many HTTP/1.1", slices.Concat(sent, []string{"X-C: x-c", "X-D: x-d", "X-E: x-e"}, own), "ok"},
		{"GET /hints HTTP/1.1", slices.Concat(sent, own), "ok"},
		{"GET /dated HTTP/1.1", slices.Concat([]string{"Date: Mon, 02 Jan 2006 15:04:05 GMT", "Content-Length: 2"}, own), "ok"},
		{"GET /parts HTTP/1.1", slices.Concat(sent, own), "ok"},
		{"GET /big HTTP/1.1", slices.Concat([]string{"Content-Length: " + strconv.Itoa(len(big))}, own), big},
	}
	for _, tc := range cases {
		writes := l.writes.Load()
		if _, err := io.WriteString(c, tc.req+"\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(tc.req, "/hints") {
			hints := testutil.HeadLines(t, br)
			if got, want := strings.Join(hints, "|"), strings.Join(slices.Concat([]string{"HTTP/1.1 103 Early Hints"}, sent), "|"); got != want {
				t.Errorf("%s: 103 head %q, want %q", tc.req, got, want)
			}
		}
		head := testutil.HeadLines(t, br)
		dates := 0
		head = slices.DeleteFunc(head[1:], func(l string) bool {
			if strings.HasPrefix(l, "Date: ") {
				dates++
				return !strings.Contains(tc.req, "/dated")
			}
			return false
		})
		if got, want := strings.Join(head, "|"), strings.Join(tc.want, "|"); got != want || dates != 1 {
			t.Errorf("%s: head %q (%d Date fields),\nwant %q and one Date", tc.req, got, dates, want)
		}
		body := make([]byte, len(tc.body))
		if _, err := io.ReadFull(br, body); err != nil || string(body) != tc.body {
			t.Fatalf("%s: body %.40q, %v", tc.req, body, err)
		}
		// One write: the head and the body together, the body in parts or not (a body
		// larger than the server keeps goes by one writev, which this connection without
		// a socket makes as one write per buffer).
		if n := l.writes.Load() - writes; n != 1 && !strings.Contains(tc.req, "/hints") && len(tc.body) < len(big) {
			t.Errorf("%s: %d writes, want 1", tc.req, n)
		}
	}
	// A field set after WriteHeader still reaches the head through the map: here a trailer,
	// which makes the answer chunked.
	if _, err := io.WriteString(c, "GET /late HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	late, body := readResponse(t, br, "GET")
	if body != "ok" || late.Trailer.Get("X-Sum") != "3" || late.Header.Get("Server") != "up" || late.Header.Get("X-Own-A") != "a" ||
		len(late.TransferEncoding) != 1 {
		t.Fatalf("adopted answer with a trailer set after WriteHeader: %+v %q", late, body)
	}
	// An answer shorter than its adopted Content-Length closes the connection: the client
	// waits for bytes that will not come.
	if _, err := io.WriteString(c, "GET /short HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	testutil.HeadLines(t, br)
	if rest, _ := io.ReadAll(br); string(rest) != "ok" {
		t.Fatalf("short answer: %q, then want the connection closed", rest)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := len(cases) + 2; recycled != want {
		t.Fatalf("recycled %d times, want %d (once per answer)", recycled, want)
	}
}

// An adopted answer written before the request's body is read still asks for the body
// (Expect: 100-continue): its head waits for the 100 Continue, and the connection stays
// open for the next request.
func TestAdoptedAnswerAsksForTheBody(t *testing.T) {
	_, dial := serve(t, &h1server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, rf := received("Content-Length", "6")
		if !w.(fieldsAdopter).AdoptFields(rf, nil) {
			t.Error("adoption refused")
		}
		_, _ = io.WriteString(w, "got ")
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("reading the body: %v", err)
		}
		_, _ = w.Write(b)
	})})
	c := dial()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second)) // a client waits about a second for the 100
	br := bufio.NewReader(c)
	for range 2 {
		_, _ = io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
		if line, err := br.ReadString('\n'); line != "HTTP/1.1 100 Continue\r\n" {
			t.Fatalf("first line %q (%v), want 100 Continue", line, err)
		}
		_, _ = br.ReadString('\n')
		_, _ = io.WriteString(c, "xy")
		resp, body := readResponse(t, br, "POST")
		if body != "got xy" || resp.Close {
			t.Fatalf("answer %q, close %v; want \"got xy\" on a connection kept open", body, resp.Close)
		}
	}
}

// AdoptFields refuses fields that frame an answer otherwise than by one Content-Length,
// and a response that already has a field set; nothing of them is adopted then.
func TestAdoptFieldsRefused(t *testing.T) {
	refused := map[string][]string{
		"/no-length":  {"Server", "up"},
		"/two":        {"Content-Length", "2", "Content-Length", "2"},
		"/nan":        {"Content-Length", "two"},
		"/negative":   {"Content-Length", "-2"},
		"/chunked":    {"Transfer-Encoding", "chunked", "Content-Length", "2"},
		"/trailer":    {"Trailer", "X-Sum", "Content-Length", "2"},
		"/connection": {"Connection", "close", "Content-Length", "2"},
		"/empty":      {},
		"/set-first":  {"Content-Length", "2"},
	}
	many := []string{"Content-Length", "2"}
	for i := range 16 {
		many = append(many, "X-"+strconv.Itoa(i), "v")
	}
	refused["/seventeen"] = many
	_, dial := serve(t, &h1server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, rf := received(refused[r.URL.Path]...)
		if r.URL.Path == "/set-first" {
			w.Header().Set("X-Own", "1")
		}
		if w.(fieldsAdopter).AdoptFields(rf, nil) {
			t.Errorf("%s: adopted", r.URL.Path)
		}
		_, _ = io.WriteString(w, "refused")
	})})
	c := dial()
	br := bufio.NewReader(c)
	for path := range refused {
		if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, body := readResponse(t, br, "GET")
		if body != "refused" || resp.ContentLength != int64(len("refused")) || resp.Header.Get("Server") != "" ||
			(path == "/set-first") != (resp.Header.Get("X-Own") == "1") {
			t.Fatalf("%s: %+v %q: want the handler's own answer", path, resp, body)
		}
	}
}

// An answer written from adopted fields is byte for byte the one written from the same
// fields adopted as a header map (AdoptHeader) with the same fields added to it, for
// random heads: any number of fields up to 16 in any order, Date among them or not, and
// added fields beyond what AddField keeps aside.
func TestAdoptFieldsIsAdoptHeader(t *testing.T) {
	type head struct{ kv, added []string }
	names := []string{"Server", "Content-Type", "Etag", "Cache-Control", "Vary", "Set-Cookie", "Date", "Last-Modified",
		"X-Request-Id", "Accept-Ranges", "Age", "Expires", "Location", "Content-Encoding", "X-Frame-Options", "Link"}
	extras := []string{"X-Envoy-Upstream-Service-Time", "X-Envoy-Peer-Metadata", "X-Envoy-Peer-Metadata-Id", "A-First", "X-Lucid-Note"}
	rng := rand.New(rand.NewPCG(7, 11))
	var heads []head
	for range 300 {
		n := rng.IntN(16) // plus Content-Length
		var kv []string
		for _, i := range rng.Perm(len(names))[:n] {
			kv = append(kv, names[i], fmt.Sprintf("v%d %s", rng.IntN(1000), strings.Repeat("x", rng.IntN(40))))
		}
		at := 2 * rng.IntN(n+1)
		kv = slices.Insert(kv, at, "Content-Length", "4")
		var added []string
		for _, i := range rng.Perm(len(extras))[:rng.IntN(len(extras)+1)] {
			added = append(added, extras[i], strconv.Itoa(rng.IntN(100)))
		}
		heads = append(heads, head{kv, added})
	}
	_, dial := serve(t, &h1server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mode, num, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		i, _ := strconv.Atoi(num)
		hd := heads[i]
		up, rf := received(hd.kv...)
		if mode == "fields" {
			a := w.(fieldsAdopter)
			if !a.AdoptFields(rf, rf) {
				t.Errorf("head %d: adoption refused", i)
			}
			for j := 0; j < len(hd.added); j += 2 {
				a.AddField(hd.added[j], hd.added[j+1])
			}
		} else {
			if !w.(interface {
				AdoptHeader(http.Header, interface{ Recycle() }) bool
			}).AdoptHeader(up, rf) {
				t.Errorf("head %d: map adoption refused", i)
			}
			for j := 0; j < len(hd.added); j += 2 {
				up[hd.added[j]] = []string{hd.added[j+1]}
			}
		}
		_, _ = io.WriteString(w, "body")
	})})
	c := dial()
	br := bufio.NewReader(c)
	read := func(path string) string {
		t.Helper()
		if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		// Date is the server's clock's, which may tick between the two answers.
		lines := slices.DeleteFunc(testutil.HeadLines(t, br), func(l string) bool {
			return strings.HasPrefix(l, "Date: ") && !strings.HasPrefix(l, "Date: v")
		})
		body := make([]byte, 4)
		if _, err := io.ReadFull(br, body); err != nil {
			t.Fatal(err)
		}
		return strings.Join(lines, "\r\n") + "\r\n\r\n" + string(body)
	}
	for i := range heads {
		fields, fromMap := read("/fields/"+strconv.Itoa(i)), read("/map/"+strconv.Itoa(i))
		if fields != fromMap {
			t.Fatalf("head %d: from adopted fields\n%q\nfrom an adopted map\n%q", i, fields, fromMap)
		}
	}
}
