package forward_test

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/cluster"
	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// Reused memory on the HTTP/1.1 path: an upstream response's (response, body reader,
// values, header map), recycled by h1server and h2server once the head is written, and
// the upstream request's header map, kept with a reused exchange. Requests on many
// connections at once must each see their own fields only, whatever another request's
// goroutine does with the memory a moment later.

// recycleUpstream answers with fields derived from the request alone: X-Path, as many
// X-F<i> as the path asks (some heads need more values than a response's array holds),
// and X-Echo, the X-Req-* fields the proxy sent upstream (a field of another request's
// upstream header map would show there). Paths ending in /chunked get a chunked body and
// /empty a 204: answers the pool reads with net/http (as those to HEAD), which nothing
// recycles, between plain ones on the same connections; /big gets a plain body too large
// to be buffered on the way, which its client abandons after the first bytes.
func recycleUpstream(t testing.TB) string {
	t.Helper()
	return backend(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Path", r.URL.Path)
		h.Set("X-Echo", echoed(r.Header))
		for i := range fieldsFor(r.URL.Path) {
			h.Set("X-F"+strconv.Itoa(i), r.URL.Path)
		}
		switch {
		case strings.HasSuffix(r.URL.Path, "/slow"):
			time.Sleep(slowAnswer)
		case strings.HasSuffix(r.URL.Path, "/empty"):
			w.WriteHeader(http.StatusNoContent)
			return
		case strings.HasSuffix(r.URL.Path, "/chunked"):
			w.(http.Flusher).Flush()
		case strings.HasSuffix(r.URL.Path, "/big"):
			h.Set("Content-Length", strconv.Itoa(bigBody))
			chunk := strings.Repeat("x", 32<<10)
			for range bigBody / len(chunk) {
				if _, err := io.WriteString(w, chunk); err != nil {
					return
				}
			}
			return
		}
		_, _ = io.WriteString(w, "body of "+r.URL.Path)
	})
}

// echoed lists h's X-Req-* fields, sorted: "X-Req-A=1,X-Req-B=2".
func echoed(h http.Header) string {
	var got []string
	for k, vv := range h {
		if strings.HasPrefix(k, "X-Req-") {
			got = append(got, k+"="+strings.Join(vv, "|"))
		}
	}
	slices.Sort(got)
	return strings.Join(got, ",")
}

// slowAnswer is how long the upstream waits before a /slow answer.
const slowAnswer = 120 * time.Millisecond

// bigBody is the length of a /big answer's body.
const bigBody = 1 << 20

// fieldsFor is how many X-F fields the upstream sets for path (0 to 11).
func fieldsFor(path string) int { return len(path) % 12 }

// recycleRequest is request i of client c: what it sends (method, path, X-Req-* fields)
// and the status and body it expects; most are plain GETs.
type recycleRequest struct {
	method, path string
	sent         http.Header
	status       int
	body         string
	abandon      bool          // the client reads the head and a few bytes, then closes the connection
	took         time.Duration // from sending the request to having the answer's head, as the client saw it
}

func newRecycleRequest(c, i int) recycleRequest {
	r := recycleRequest{method: http.MethodGet, path: fmt.Sprintf("/c%d/r%d/%s", c, i, strings.Repeat("p", (c*7+i)%13)),
		sent: http.Header{}, status: http.StatusOK}
	switch i % 8 {
	case 6:
		if i%16 == 6 {
			r.path += "/slow"
		}
	case 1:
		r.path += "/chunked"
	case 3:
		r.method = http.MethodHead
	case 5:
		r.path += "/empty"
		r.status = http.StatusNoContent
	case 7:
		r.path += "/big"
		r.abandon = true
	}
	if r.method == http.MethodGet && r.status == http.StatusOK && !r.abandon {
		r.body = "body of " + r.path
	}
	for k := range (c + i) % 5 {
		r.sent.Set(fmt.Sprintf("X-Req-%c", 'A'+k), r.path)
	}
	return r
}

// check says what is wrong with the answer to rq (nil: nothing).
func (rq *recycleRequest) check(status int, got http.Header, body string) error {
	path, sent := rq.path, rq.sent
	if status != rq.status || body != rq.body {
		return fmt.Errorf("%s %s: %d %q, want %d %q", rq.method, path, status, body, rq.status, rq.body)
	}
	if got.Get("X-Path") != path {
		return fmt.Errorf("%s: X-Path %q", path, got.Get("X-Path"))
	}
	if want := echoed(sent); got.Get("X-Echo") != want {
		return fmt.Errorf("%s: the upstream got X-Req fields %q, want %q", path, got.Get("X-Echo"), want)
	}
	if got.Get("X-Route") != "added" {
		return fmt.Errorf("%s: X-Route %q", path, got.Values("X-Route"))
	}
	if c := got.Values("Set-Cookie"); len(c) != 1 || !strings.HasPrefix(c[0], "sticky=") {
		return fmt.Errorf("%s: Set-Cookie %q, want the generated sticky cookie", path, c)
	}
	if got.Get("X-Envoy-Peer-Metadata-Id") != "self-id" || got.Get("X-Envoy-Peer-Metadata") != "self-metadata" {
		return fmt.Errorf("%s: metadata exchange fields %v", path, got)
	}
	// The service time lives in the recycled answer's memory: a slow answer's must not
	// show on a fast one, nor the other way round. A fast answer may itself take long on a
	// loaded machine, but its service time cannot be longer than the client waited for it.
	ust := got.Values("X-Envoy-Upstream-Service-Time")
	ms, err := 0, error(nil)
	if len(ust) == 1 {
		ms, err = strconv.Atoi(ust[0])
	}
	slow := time.Duration(ms) * time.Millisecond
	switch {
	case len(ust) != 1 || err != nil:
		return fmt.Errorf("%s: X-Envoy-Upstream-Service-Time %q", path, ust)
	case strings.HasSuffix(path, "/slow") && slow < slowAnswer:
		return fmt.Errorf("%s: upstream service time %v, shorter than the upstream's %v wait", path, slow, slowAnswer)
	case !strings.HasSuffix(path, "/slow") && slow >= slowAnswer && slow > rq.took:
		return fmt.Errorf("%s: upstream service time %v on an answer that does not wait, which the client had after %v", path, slow, rq.took)
	}
	n := fieldsFor(path)
	for k, vv := range got {
		i, ok := strings.CutPrefix(k, "X-F")
		if !ok {
			continue
		}
		if j, err := strconv.Atoi(i); err != nil || j >= n || len(vv) != 1 || vv[0] != path {
			return fmt.Errorf("%s: field %s %q (want X-F0..X-F%d = the path)", path, k, vv, n-1)
		}
	}
	for i := range n {
		if got.Get("X-F"+strconv.Itoa(i)) != path {
			return fmt.Errorf("%s: X-F%d missing", path, i)
		}
	}
	return nil
}

// recycleEnv is a proxy whose route adds a response field, to up over protocol, with the exchanges reused counted.
//
// The proxy changes the upstream's fields in the map the downstream server adopts: the
// route adds one, a ring-hash cookie policy sets a cookie (Set-Cookie), and, inbound,
// the metadata exchange adds this workload's headers.
func recycleEnv(t *testing.T, up string, protocol resource.Protocol) (*env, *atomic.Int64) {
	t.Helper()
	rt := toCluster("c")
	rt.ResponseHeadersToAdd = []resource.HeaderValueOption{{Key: "x-route", Value: "added"}}
	rt.Action.HashPolicy = []resource.HashPolicy{{Cookie: &resource.CookieHash{Name: "sticky", HasTTL: true, TTL: time.Hour, Path: "/"}}}
	c := static("c", up)
	c.Protocol = protocol
	c.LBPolicy = resource.RingHash
	e := newEnvWith(t, func(o *forward.Options) {
		o.PeerMetadata = forward.PeerMetadata{ID: "self-id", Value: "self-metadata"}
	}, routes(rt), c)
	e.direction = "inbound"
	var reused atomic.Int64
	t.Cleanup(forward.OnRelease(func(ok bool) {
		if ok {
			reused.Add(1)
		}
	}))
	return e, &reused
}

// runRecycleClients sends rounds requests from each of clients clients at once through
// client, checking every answer; with tolerateErrors, failed requests (streams ended on
// purpose) are skipped.
func runRecycleClients(t *testing.T, base string, client *http.Client, clients, rounds int, tolerateErrors bool) (ok int64) {
	t.Helper()
	var wg sync.WaitGroup
	var okN atomic.Int64
	errs := make(chan error, clients)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				rq := newRecycleRequest(c, i)
				req, err := http.NewRequest(rq.method, base+rq.path, nil)
				if err != nil {
					errs <- err
					return
				}
				req.Host = "svc:9080"
				for k, vv := range rq.sent {
					req.Header[k] = vv
				}
				sent := time.Now()
				resp, err := client.Do(req)
				rq.took = time.Since(sent)
				if err != nil {
					if tolerateErrors {
						continue
					}
					errs <- fmt.Errorf("%s: %w", rq.path, err)
					return
				}
				if rq.abandon { // a client gone mid-response: recycled only if it was all written before
					var some [512]byte
					_, _ = io.ReadFull(resp.Body, some[:])
					_ = resp.Body.Close() // closes the connection: the rest was not read
					if err := rq.check(resp.StatusCode, resp.Header, ""); err != nil {
						errs <- err
						return
					}
					continue
				}
				b, rerr := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if rerr != nil || resp.StatusCode >= 500 {
					if tolerateErrors {
						continue
					}
					errs <- fmt.Errorf("%s: status %d, %w", rq.path, resp.StatusCode, rerr)
					return
				}
				if err := rq.check(resp.StatusCode, resp.Header, string(b)); err != nil {
					errs <- err
					return
				}
				okN.Add(1)
			}
		}()
	}
	wg.Wait() // the records pile up in e.infos (dropped once it is full)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	return okN.Load()
}

// clientTimeout bounds a request: an answer whose head announced another answer's
// Content-Length would otherwise keep its client waiting for bytes that never come.
const clientTimeout = 10 * time.Second

// Through h1server, h2server (h2c: streams of several connections at once) and net/http's
// server (LUCID_HTTP1_SERVER=nethttp, which adopts no header map: the upstream's fields
// are copied, their values still the response's, and nothing is recycled): each answer
// carries its own fields only, while the exchanges and the responses' memory are reused.
// With an HTTP/2 upstream nothing of the response is recycled, but the upstream request's
// header map is still the reused exchange's.
func TestRecycledAnswersCarryTheirOwnFields(t *testing.T) {
	h2c := func() *http.Transport {
		tr := &http.Transport{DisableCompression: true, Protocols: new(http.Protocols)}
		tr.Protocols.SetUnencryptedHTTP2(true)
		return tr
	}
	h1 := func() *http.Transport { return &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 16} }
	for _, c := range []struct {
		name      string
		proxy     func(testing.TB, string, http.Handler) string
		transport func() *http.Transport
		upstream  resource.Protocol
		recycles  bool
	}{
		{"h1server", h1Proxy, h1, resource.HTTP1, true},
		{"h2server", h2Proxy, h2c, resource.HTTP1, true},
		{"net/http", netHTTPProxy, h1, resource.HTTP1, false},
		{"h1server to HTTP/2", h1Proxy, h1, resource.HTTP2, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			e, reused := recycleEnv(t, recycleUpstream(t), c.upstream)
			addr := c.proxy(t, "127.0.0.1:0", http.HandlerFunc(e.serve))
			tr := c.transport()
			t.Cleanup(tr.CloseIdleConnections)
			n := runRecycleClients(t, "http://"+addr, &http.Client{Transport: tr, Timeout: clientTimeout}, 8, 96, false)
			// With net/http's HTTP/2 client (LUCID_HTTP2_CLIENT=nethttp) nothing is reused.
			if c.recycles && e.ps.Get("c").KeepsNoRequest() && reused.Load() == 0 {
				t.Fatalf("%d answers, no exchange reused: nothing was recycled", n)
			}
		})
	}
}

// keepDraining ends the streams of host again and again (DrainHost, as when it leaves
// its cluster; "gone": no such cluster, so it never comes back) until stop is called.
func keepDraining(e *env, host *cluster.Host) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			e.cm.DrainHost("gone", host, "endpoint left its cluster")
			time.Sleep(20 * time.Microsecond)
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		time.Sleep(50 * time.Millisecond) // DrainHost timers still pending
	}
}

// The upstream host's streams are ended again and again (the grace period is a
// nanosecond) while answers flow through h1server: EndStream runs on another goroutine,
// closing bodies and cancelling attempts, some of them between a body's end and its
// response's recycling. What arrives whole carries its own fields.
func TestRecycledAnswersWhileHostDrained(t *testing.T) {
	e, reused := recycleEnv(t, recycleUpstream(t), resource.HTTP1)
	e.cm.SetDrainOptions(cluster.DrainOptions{HTTPGrace: time.Nanosecond, TCPGrace: -1})
	addr := h1Proxy(t, "127.0.0.1:0", http.HandlerFunc(e.serve))
	stop := keepDraining(e, e.cm.Get("c").Hosts()[0])
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	n := runRecycleClients(t, "http://"+addr, &http.Client{Transport: tr, Timeout: clientTimeout}, 6, 150, true)
	stop()
	if n == 0 || reused.Load() == 0 {
		t.Fatalf("%d answers whole, %d exchanges reused: the test proves nothing", n, reused.Load())
	}
}
