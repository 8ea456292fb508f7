package forward_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// headRecorder is an HTTP/1.1 upstream that records each request head it reads, as its
// field lines ("Name: value"), and answers 200 "ok"; on its first connection it closes
// instead of answering when cutFirst is set.
func headRecorder(t *testing.T, cutFirst bool) (string, chan []string) {
	t.Helper()
	heads := make(chan []string, 16)
	addr := rawBackend(t, func(c net.Conn, br *bufio.Reader, n int) {
		for {
			var fields []string
			length := 0
			if _, err := br.ReadString('\n'); err != nil { // the request line
				return
			}
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				line = strings.TrimSuffix(line, "\r\n")
				if line == "" {
					break
				}
				fields = append(fields, line)
				if v, ok := strings.CutPrefix(line, "Content-Length: "); ok {
					length, _ = strconv.Atoi(v)
				}
			}
			if _, err := io.CopyN(io.Discard, br, int64(length)); err != nil {
				return
			}
			heads <- fields
			if cutFirst && n == 0 {
				return
			}
			if _, err := c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")); err != nil {
				return
			}
		}
	})
	return addr, heads
}

// sendRaw writes each head (with its body) on one connection to the proxy at url and
// fails unless every answer is 200.
func sendRaw(t *testing.T, url string, heads ...string) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for _, h := range heads {
		if _, err := io.WriteString(c, h); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%q: %v", h, err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%q: %d %s (%s)", h, resp.StatusCode, b, resp.Header.Get("X-Lucid-Error"))
		}
	}
}

// nextHead is the next head the upstream read.
func nextHead(t *testing.T, heads chan []string) []string {
	t.Helper()
	select {
	case h := <-heads:
		return h
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream read no request")
		return nil
	}
}

// names are the field names of a head's lines.
func names(fields []string) []string {
	var ns []string
	for _, f := range fields {
		n, _, _ := strings.Cut(f, ":")
		ns = append(ns, n)
	}
	return ns
}

// Through the proxy's own HTTP/1.1 loop, a request's fields go upstream in the order they
// came, each under its canonical name, the proxy's own after them (a field it sets that
// the client sent stays in its place): the connection's fields, Host and the framing are
// the proxy's to write. The next request on the connection, in a reused exchange, carries
// only its own.
func TestUpstreamFieldsInOrder(t *testing.T) {
	up, heads := headRecorder(t, false)
	h := newHopOn(t, resource.HTTP1, up, h1Proxy)
	sendRaw(t, h.url,
		"GET /a HTTP/1.1\r\nhost: svc:9080\r\nuser-agent: u\r\nX-Custom:  1 \r\nconnection: keep-alive\r\nAccept: */*\r\nx-forwarded-proto: https\r\n\r\n",
		"POST /b HTTP/1.1\r\nHost: svc:9080\r\nContent-Length: 3\r\nx-request-id: 0f0e0d0c-0b0a-4908-8706-050403020100\r\nX-Second: 2\r\n\r\nabc",
		"GET /c HTTP/1.1\r\nHost: svc:9080\r\n\r\n",
	)
	for _, want := range [][]string{
		{"Host", "User-Agent", "X-Custom", "Accept", "X-Forwarded-Proto", "X-Request-Id", "X-Envoy-Attempt-Count"},
		{"Host", "X-Request-Id", "X-Second", "X-Forwarded-Proto", "X-Envoy-Attempt-Count", "Content-Length"},
		{"Host", "X-Request-Id", "X-Forwarded-Proto", "X-Envoy-Attempt-Count"},
	} {
		got := nextHead(t, heads)
		if !slices.Equal(names(got), want) {
			t.Fatalf("upstream fields %q, want names %q", got, want)
		}
		for _, f := range got {
			switch {
			case f == "X-Custom: 1", f == "User-Agent: u", f == "Accept: */*", f == "X-Second: 2", f == "Content-Length: 3",
				f == "Host: svc:9080", f == "X-Envoy-Attempt-Count: 1":
			case strings.HasPrefix(f, "X-Forwarded-Proto: "):
				// Inside the mesh the first hop's scheme is kept; else the connection's.
				if want := map[bool]string{true: "https", false: "http"}[len(got) == 7]; f != "X-Forwarded-Proto: "+want {
					t.Fatalf("%q, want %s", f, want)
				}
			case strings.HasPrefix(f, "X-Request-Id: ") && len(f) == len("X-Request-Id: ")+36:
			default:
				t.Fatalf("unexpected upstream field %q in %q", f, got)
			}
		}
	}
}

// Requests whose fields cannot go up as a list, or whose route changes them, reach the
// upstream with the same fields as they would through the header map: hop-by-hop ones
// and those Connection names removed, repeated names kept, more than 16 fields, an
// Idempotency-Key, header operations, x-envoy-* retry fields taken off.
func TestUpstreamFieldsThroughTheMap(t *testing.T) {
	for _, tc := range []struct {
		name  string
		head  string
		shape func(*resource.Route, *resource.Cluster)
		want  []string // in any order, X-Request-Id left out
	}{
		{"hop-by-hop", "GET / HTTP/1.1\r\nHost: svc\r\nConnection: X-Drop\r\nX-Drop: 1\r\nX-Keep: 2\r\nKeep-Alive: 5\r\n\r\n", nil,
			[]string{"Host: svc", "X-Envoy-Attempt-Count: 1", "X-Forwarded-Proto: http", "X-Keep: 2"}},
		{"a name twice", "GET / HTTP/1.1\r\nHost: svc\r\nAccept: a\r\naccept: b\r\n\r\n", nil,
			[]string{"Accept: a", "Accept: b", "Host: svc", "X-Envoy-Attempt-Count: 1", "X-Forwarded-Proto: http"}},
		{"17 fields", manyFieldsHead(17), nil, append(manyFieldsWant(17), "Host: svc", "X-Envoy-Attempt-Count: 1", "X-Forwarded-Proto: http")},
		{"idempotency key", "POST / HTTP/1.1\r\nHost: svc\r\nIdempotency-Key: k\r\nContent-Length: 1\r\n\r\nx", nil,
			[]string{"Content-Length: 1", "Host: svc", "Idempotency-Key: k", "X-Envoy-Attempt-Count: 1", "X-Forwarded-Proto: http"}},
		{"header operations", "GET / HTTP/1.1\r\nHost: svc\r\nX-Custom: 1\r\nX-Other: 2\r\n\r\n", func(r *resource.Route, _ *resource.Cluster) {
			r.RequestHeadersToAdd = []resource.HeaderValueOption{{Key: "x-added", Value: "yes"}}
			r.RequestHeadersToRemove = []string{"x-custom"}
		}, []string{"Host: svc", "X-Added: yes", "X-Envoy-Attempt-Count: 1", "X-Forwarded-Proto: http", "X-Other: 2"}},
		{"retry fields", "GET / HTTP/1.1\r\nHost: svc\r\nX-Envoy-Retry-On: 5xx\r\nX-Envoy-Upstream-Rq-Timeout-Ms: 900\r\nX-Keep: 1\r\n\r\n", nil,
			[]string{"Host: svc", "X-Envoy-Attempt-Count: 1", "X-Forwarded-Proto: http", "X-Keep: 1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up, heads := headRecorder(t, false)
			var shape []func(*resource.Route, *resource.Cluster)
			if tc.shape != nil {
				shape = append(shape, tc.shape)
			}
			h := newHopDir(t, resource.HTTP1, up, h1Proxy, "inbound", shape...)
			sendRaw(t, h.url, tc.head)
			got := withoutRequestID(nextHead(t, heads))
			slices.Sort(got)
			slices.Sort(tc.want)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("upstream fields\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

// A retried request carries every field again, with its attempt's number; one sent to an
// HTTP/2 upstream carries them too (its client reads the header map).
func TestUpstreamFieldsRetriedAndOverHTTP2(t *testing.T) {
	t.Run("retry", func(t *testing.T) {
		up, heads := headRecorder(t, true)
		h := newHopDir(t, resource.HTTP1, up, h1Proxy, "inbound", func(r *resource.Route, _ *resource.Cluster) {
			r.Action.RetryPolicy = &resource.RetryPolicy{RetryOn: []string{"reset"}, NumRetries: 1}
		})
		sendRaw(t, h.url, "GET / HTTP/1.1\r\nHost: svc\r\nX-A: 1\r\nX-B: 2\r\n\r\n")
		first, second := withoutRequestID(nextHead(t, heads)), withoutRequestID(nextHead(t, heads))
		if want := []string{"Host: svc", "X-A: 1", "X-B: 2", "X-Forwarded-Proto: http", "X-Envoy-Attempt-Count: 1"}; !slices.Equal(first, want) {
			t.Fatalf("first attempt %q, want %q", first, want)
		}
		slices.Sort(second)
		if want := []string{"Host: svc", "X-A: 1", "X-B: 2", "X-Envoy-Attempt-Count: 2", "X-Forwarded-Proto: http"}; !slices.Equal(second, want) {
			t.Fatalf("second attempt %q, want %q", second, want)
		}
	})
	t.Run("h2c", func(t *testing.T) {
		got := make(chan http.Header, 1)
		up := backend(t, func(w http.ResponseWriter, r *http.Request) {
			if r.ProtoMajor == 2 {
				got <- r.Header.Clone()
			}
		})
		h := newHopOn(t, resource.HTTP2, up, h1Proxy)
		sendRaw(t, h.url, "GET / HTTP/1.1\r\nHost: svc\r\nX-A: 1\r\nUser-Agent: u\r\n\r\n")
		select {
		case hd := <-got:
			if hd.Get("X-A") != "1" || hd.Get("User-Agent") != "u" || hd.Get("X-Forwarded-Proto") != "http" || len(hd.Get("X-Request-Id")) != 36 {
				t.Fatalf("HTTP/2 upstream got %q", hd)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no HTTP/2 request upstream")
		}
	})
}

// manyFieldsHead is a GET with Host and n-1 more fields; manyFieldsWant those n-1 as the
// upstream writes them.
func manyFieldsHead(n int) string {
	var b strings.Builder
	b.WriteString("GET / HTTP/1.1\r\nHost: svc\r\n")
	for _, f := range manyFieldsWant(n) {
		b.WriteString(f + "\r\n")
	}
	return b.String() + "\r\n"
}

func manyFieldsWant(n int) []string {
	var fs []string
	for i := 1; i < n; i++ {
		fs = append(fs, "X-F"+strconv.Itoa(i)+": v")
	}
	return fs
}

// withoutRequestID is fields without the X-Request-Id line (its value is random).
func withoutRequestID(fields []string) []string {
	return slices.DeleteFunc(slices.Clone(fields), func(f string) bool { return strings.HasPrefix(f, "X-Request-Id: ") })
}
