package forward_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// releases records whether each released exchange was reused.
type releases chan bool

func watchReleases(t *testing.T) releases {
	t.Helper()
	r := make(releases, 10000)
	t.Cleanup(forward.OnRelease(func(reused bool) {
		select {
		case r <- reused:
		default:
		}
	}))
	return r
}

// next is the fate of the next exchange released (Serve releases it after the observers
// had its record).
func (r releases) next(t *testing.T) bool {
	t.Helper()
	select {
	case v := <-r:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("no exchange released")
		return false
	}
}

// An exchange is reused after a plain request answered in full or a local reply, and left
// to the GC whenever something may still reach it: a request body, a retry, a mirror,
// a client gone mid-response, an upstream reset mid-body.
func TestExchangeReuse(t *testing.T) {
	echo := func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "ok")
	}
	up := backend(t, echo)
	h2 := static("h2", up)
	h2.Protocol = resource.HTTP2
	var flaky sync.Mutex
	flakyN := 0
	flakyUp := backend(t, func(w http.ResponseWriter, r *http.Request) {
		flaky.Lock()
		flakyN++
		n := flakyN
		flaky.Unlock()
		if n%2 == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	release := make(chan struct{})
	slowUp := backend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "4")
		_, _ = io.WriteString(w, "ab")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	resetUp := backend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "4")
		_, _ = io.WriteString(w, "ab")
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // the connection is cut mid-body
	})

	plain := toCluster("c")
	plain.Match.Path = "/plain"
	viaH2 := toCluster("h2")
	viaH2.Match.Path = "/h2"
	timeouts := toCluster("c")
	timeouts.Match.Path = "/timeouts"
	timeouts.Action.Timeout = time.Minute
	timeouts.Action.RetryPolicy = &resource.RetryPolicy{RetryOn: []string{"5xx"}, NumRetries: 1, PerTryTimeout: time.Minute}
	retried := toCluster("flaky")
	retried.Match.Path = "/retried"
	retried.Action.RetryPolicy = &resource.RetryPolicy{RetryOn: []string{"5xx"}, NumRetries: 2, BackOffBase: time.Millisecond}
	mirrored := toCluster("c")
	mirrored.Match.Path = "/mirrored"
	mirrored.Action.Mirrors = []resource.Mirror{{Cluster: "c", Percent: 100}}
	slow := toCluster("slow")
	slow.Match.Path = "/slow"
	reset := toCluster("reset")
	reset.Match.Path = "/reset"
	e := newEnv(t, routes(plain, viaH2, timeouts, retried, mirrored, slow, reset),
		static("c", up), h2, static("flaky", flakyUp), static("slow", slowUp), static("reset", resetUp))
	rel := watchReleases(t)

	send := func(method, path, body string) result {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, e.url+path, rd)
		req.Host = "svc:9080"
		return e.do(e.h1, req)
	}
	for _, c := range []struct {
		name, method, path, body string
		code                     int
		reused                   bool
	}{
		{"GET over HTTP/1.1", "GET", "/plain", "", 200, true},
		{"GET over h2c", "GET", "/h2", "", 200, true},
		{"local reply, no route", "GET", "/nowhere", "", 404, true},
		{"route and per-try timeouts that did not fire", "GET", "/timeouts", "", 200, true},
		{"POST with a body", "POST", "/plain", "hello", 200, false},
		{"retried", "GET", "/retried", "", 200, false},
		{"mirrored", "GET", "/mirrored", "", 200, false},
	} {
		got := send(c.method, c.path, c.body)
		e.info()
		if got.code != c.code {
			t.Fatalf("%s: status %d, want %d (x-lucid-error %q)", c.name, got.code, c.code, got.hdr.Get("X-Lucid-Error"))
		}
		if reused := rel.next(t); reused != c.reused {
			t.Errorf("%s: reused %v, want %v", c.name, reused, c.reused)
		}
	}
	// A mirror's exchange is the mirrored request's; the shadow request has none.

	t.Run("upstream reset mid-body", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, e.url+"/reset", nil)
		req.Host = "svc:9080"
		if resp, err := e.h1.Do(req); err == nil {
			_, _ = io.ReadAll(resp.Body)
			_ = resp.Body.Close()
		}
		e.info()
		if rel.next(t) {
			t.Error("reused after the upstream reset mid-body")
		}
	})

	t.Run("client gone mid-response", func(t *testing.T) {
		defer close(release)
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.url+"/slow", nil)
		req.Host = "svc:9080"
		resp, err := e.h1.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 2)
		_, _ = io.ReadFull(resp.Body, buf)
		cancel()
		_ = resp.Body.Close()
		e.info()
		if rel.next(t) {
			t.Error("reused after the client left mid-response")
		}
	})
}

// Exchanges reused under concurrent load never mix requests: each client gets the answer
// to its own path and headers, with the fields the proxy sets, through both downstream
// servers and both upstream protocols (the race detector sees any late use of a reused
// exchange).
func TestExchangeReuseConcurrent(t *testing.T) {
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Tag", r.Header.Get("X-Tag"))
		_, _ = fmt.Fprintf(w, "%s|%s|%s", r.URL.RequestURI(), r.Header.Get("X-Tag"), r.Header.Get("X-Request-Id"))
	})
	h2 := static("h2", up)
	h2.Protocol = resource.HTTP2
	viaH2 := toCluster("h2")
	viaH2.Match.Path = "/h2"
	e := newEnv(t, routes(viaH2, toCluster("c")), static("c", up), h2)
	rel := watchReleases(t)
	servers := map[string]string{
		"h1server":      "http://" + h1Proxy(t, "127.0.0.1:0", http.HandlerFunc(e.serve)),
		"h2server":      "http://" + h2Proxy(t, "127.0.0.1:0", http.HandlerFunc(e.serve)),
		"nethttp-http1": e.url,
		"nethttp-h2c":   e.url,
	}
	const workers, each = 4, 120
	var wg sync.WaitGroup
	for name, base := range servers {
		client := e.h1
		if strings.HasPrefix(name, "h2") || strings.HasSuffix(name, "h2c") {
			client = e.h2c
		}
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					path := fmt.Sprintf("/p/%s/%d/%d?q=%d", name, w, i, i)
					if i%2 == 1 {
						path = "/h2" + path
					}
					tag := fmt.Sprintf("%s-%d-%d", name, w, i)
					id := "id-" + tag
					req, _ := http.NewRequest(http.MethodGet, base+path, nil)
					req.Host = "svc:9080"
					req.Header.Set("X-Tag", tag)
					req.Header.Set("X-Request-Id", id)
					resp, err := client.Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					b, _ := io.ReadAll(resp.Body)
					_ = resp.Body.Close()
					if want := path + "|" + tag + "|" + id; string(b) != want || resp.Header.Get("X-Tag") != tag ||
						resp.Header.Get("X-Envoy-Upstream-Service-Time") == "" {
						t.Errorf("got %q with X-Tag %q, service time %q; want %q", b, resp.Header.Get("X-Tag"),
							resp.Header.Get("X-Envoy-Upstream-Service-Time"), want)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	reused, n := 0, len(servers)*workers*each
	for range n {
		if rel.next(t) {
			reused++
		}
	}
	if reused != n {
		t.Errorf("%d of %d exchanges reused, want all", reused, n)
	}
}
