package forward_test

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

// Upstream resilience tests: misbehaving upstreams on 127.0.92.0/24.

func listen92(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.92.2:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// ids counts the request IDs an upstream processed.
type ids struct {
	mu sync.Mutex
	m  map[string]int
}

func (s *ids) add(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]int{}
	}
	s.m[id]++
}

func (s *ids) count(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[id]
}

func (s *ids) duplicates() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var d []string
	for id, n := range s.m {
		if n > 1 {
			d = append(d, fmt.Sprintf("%s ×%d", id, n))
		}
	}
	return d
}

// idleCloser is an HTTP/1.1 upstream that closes a connection idle for idle, optionally
// advertising it in "Keep-Alive: timeout=N" (N in seconds, fractional). It processes a
// request only when it read all of it, and counts request IDs.
func idleCloser(t testing.TB, idle time.Duration, header bool, seen *ids) string {
	t.Helper()
	ln := listen92(t)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					_ = c.SetReadDeadline(time.Now().Add(idle))
					req, err := http.ReadRequest(br)
					if err != nil {
						if ne, ok := err.(net.Error); ok && ne.Timeout() { //nolint:errorlint // not wrapped
							time.Sleep(3 * time.Millisecond) // the close lags: a request arriving now is reset
						}
						return
					}
					_ = c.SetReadDeadline(time.Time{})
					if _, err := io.Copy(io.Discard, req.Body); err != nil {
						return
					}
					seen.add(req.Header.Get("X-Request-Id"))
					ka := ""
					if header {
						ka = fmt.Sprintf("Keep-Alive: timeout=%g\r\n", idle.Seconds())
					}
					if _, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\n%sContent-Length: 2\r\n\r\nok", ka); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// TestKeepAliveRace is the keep-alive race of docs/scenarios.md (scenario 2) with short timers: upstreams
// closing idle connections after 100 and 200 ms, with and without a Keep-Alive header,
// requests at intervals straddling the timeout, no retry policy. Zero client-visible
// errors except plain POSTs that reached the wire (503 UC saying why they were not
// retried), and no request processed twice.
func TestKeepAliveRace(t *testing.T) {
	type upstream struct {
		idle   time.Duration
		header bool
	}
	ups := []upstream{{100 * time.Millisecond, false}, {200 * time.Millisecond, false}, {100 * time.Millisecond, true}, {200 * time.Millisecond, true}}
	var clusters []*resource.Cluster
	seen := make([]*ids, len(ups))
	var rts []resource.Route
	for i, u := range ups {
		seen[i] = &ids{}
		name := fmt.Sprintf("c%d", i)
		clusters = append(clusters, static(name, idleCloser(t, u.idle, u.header, seen[i])))
		rt := toCluster(name)
		rt.Match.Path = "/" + name + "/"
		rts = append(rts, rt)
	}
	e := newEnv(t, routes(rts...), clusters...)

	type outcome struct {
		method, id string
		key        bool
		code       int
		lucidError string
		up         int
	}
	var mu sync.Mutex
	var outcomes []outcome
	var wg sync.WaitGroup
	const perClient = 25
	for i, u := range ups {
		for c := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rnd := rand.New(rand.NewPCG(uint64(i), uint64(c)))
				client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
				defer client.CloseIdleConnections()
				for n := range perClient {
					// straddle the idle timeout: 0.7× to 1.3×
					time.Sleep(time.Duration(float64(u.idle) * (0.7 + 0.6*rnd.Float64())))
					o := outcome{up: i, id: fmt.Sprintf("u%d-c%d-%d", i, c, n)}
					var body io.Reader
					switch n % 4 {
					case 0:
						o.method = http.MethodGet
					case 1:
						o.method, body = http.MethodPut, strings.NewReader("put")
					case 2:
						o.method, body, o.key = http.MethodPost, strings.NewReader("keyed"), true
					default:
						o.method, body = http.MethodPost, strings.NewReader("plain")
					}
					req, _ := http.NewRequest(o.method, fmt.Sprintf("%s/c%d/", e.url, i), body)
					req.Host = "svc:9080"
					req.Header.Set("X-Request-Id", o.id)
					if o.key {
						req.Header.Set("Idempotency-Key", o.id)
					}
					resp, err := client.Do(req)
					if err != nil {
						t.Errorf("%s: %v", o.id, err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					o.code, o.lucidError = resp.StatusCode, resp.Header.Get("X-Lucid-Error")
					mu.Lock()
					outcomes = append(outcomes, o)
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	failedPOST := 0
	for _, o := range outcomes {
		n := seen[o.up].count(o.id)
		switch {
		case o.code == 200 && n == 1:
		case o.code == 503 && o.method == http.MethodPost && !o.key && n == 0 &&
			strings.HasPrefix(o.lucidError, "UC: ") && strings.Contains(o.lucidError, "not idempotent"):
			failedPOST++
		default:
			t.Errorf("%s %s: %d (processed %d times) %s", o.method, o.id, o.code, n, o.lucidError)
		}
	}
	for i := range ups {
		if d := seen[i].duplicates(); len(d) > 0 {
			t.Errorf("upstream %d processed requests twice: %v", i, d)
		}
	}
	var saves uint64
	for i := range ups {
		saves += e.cm.Get(fmt.Sprintf("c%d", i)).Stats().UpstreamRqReusedConnRetry.Load()
	}
	t.Logf("%d requests, %d reused-connection retries, %d plain POSTs failed", len(outcomes), saves, failedPOST)
	if len(outcomes) != len(ups)*2*perClient {
		t.Errorf("%d outcomes", len(outcomes))
	}
}

// raceServer answers the first request of each connection; a later request on the same
// connection is read and dropped with a reset, as when the server closes an idle
// connection just as the request arrives. It counts processed request IDs.
func raceServer(t testing.TB, seen *ids) string {
	t.Helper()
	ln := listen92(t)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, req.Body)
				seen.add(req.Header.Get("X-Request-Id"))
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				if _, err := http.ReadRequest(br); err == nil {
					_ = c.(*net.TCPConn).SetLinger(0)
				}
			}()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// TestReusedConnRetry: a request that fails on a reused connection before any response
// byte is retried once on a new connection when replayable, never when it may have been
// processed.
func TestReusedConnRetry(t *testing.T) {
	cases := []struct {
		name    string
		method  string
		key     bool
		code    int
		flags   string
		note    bool
		explain string
	}{
		{name: "GET retried", method: "GET", code: 200, flags: "-", note: true},
		{name: "PUT retried", method: "PUT", code: 200, flags: "-", note: true},
		{name: "DELETE retried", method: "DELETE", code: 200, flags: "-", note: true},
		{name: "POST with Idempotency-Key retried", method: "POST", key: true, code: 200, flags: "-", note: true},
		{name: "plain POST not retried", method: "POST", code: 503, flags: "UC",
			explain: "closed the connection before response headers (reused connection) (1 attempt); not retried on a new connection: POST is not idempotent and the request was sent, so the upstream may have processed it"},
		{name: "PATCH not retried", method: "PATCH", code: 503, flags: "UC", explain: "PATCH is not idempotent"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			seen := &ids{}
			rt := toCluster("c")
			rt.Action.RetryPolicy = istioDefaultRetry() // UC is not retried by Istio's default
			e := newEnv(t, routes(rt), static("c", raceServer(t, seen)))
			if got := e.get("/"); got.code != 200 { // a connection to reuse
				t.Fatalf("warm-up: %d", got.code)
			}
			e.info()
			req, _ := http.NewRequest(tc.method, e.url+"/", strings.NewReader("body"))
			req.Host = "svc:9080"
			req.Header.Set("X-Request-Id", "the-one")
			if tc.key {
				req.Header.Set("Idempotency-Key", "k1")
			}
			got := e.do(e.h1, req)
			info := e.info()
			if got.code != tc.code || info.Flags.String() != tc.flags || info.Attempts != 1 {
				t.Fatalf("got %d flags %s attempts %d (%s)", got.code, info.Flags, info.Attempts, got.hdr.Get("X-Lucid-Error"))
			}
			if has := slices.Contains(info.Notes, "reused-conn-retry"); has != tc.note {
				t.Fatalf("notes %v", info.Notes)
			}
			stat := e.cm.Get("c").Stats().UpstreamRqReusedConnRetry.Load()
			if (stat == 1) != tc.note {
				t.Fatalf("upstream_rq_reused_conn_retry %d", stat)
			}
			if n := seen.count("the-one"); (tc.code == 200 && n != 1) || (tc.code != 200 && n != 0) {
				t.Fatalf("processed %d times", n)
			}
			if tc.explain != "" {
				if le := got.hdr.Get("X-Lucid-Error"); !strings.Contains(le, tc.explain) {
					t.Fatalf("x-lucid-error %q lacks %q", le, tc.explain)
				}
				if info.ResponseCodeDetails != "upstream_reset_before_response_started{connection_termination}" {
					t.Fatalf("details %q", info.ResponseCodeDetails)
				}
			}
		})
	}
}

// TestMisbehavingUpstreams: what the client sees for each way an upstream can fail.
func TestMisbehavingUpstreams(t *testing.T) {
	type want struct {
		code     int
		flags    string
		details  string
		attempts int
		body     string
		maxSeen  int // times the upstream may see the request
	}
	var n atomic.Int64
	rstAfterRead := func(t testing.TB, seen *ids) string {
		t.Helper()
		return rawServer92(t, func(c net.Conn, br *bufio.Reader) {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			seen.add(req.Header.Get("X-Request-Id"))
			_ = c.(*net.TCPConn).SetLinger(0)
		})
	}
	cases := []struct {
		name   string
		method string
		up     func(t testing.TB, seen *ids) string
		policy *resource.RetryPolicy
		want   want
	}{
		{name: "RST after reading the request, Istio default policy", method: "POST", up: rstAfterRead, policy: istioDefaultRetry(),
			want: want{503, "UC", "upstream_reset_before_response_started{connection_termination}", 1,
				"upstream connect error or disconnect/reset before headers. reset reason: connection termination", 1}},
		{name: "RST after reading the request, retry_on reset", method: "GET", up: rstAfterRead,
			policy: &resource.RetryPolicy{RetryOn: []string{"reset"}, NumRetries: 2, BackOffBase: time.Millisecond},
			want: want{503, "UC,URX", "upstream_reset_before_response_started{connection_termination}", 3,
				"upstream connect error or disconnect/reset before headers. retried and the latest reset reason: connection termination", 3}},
		{name: "RST mid-response", method: "GET", up: func(t testing.TB, seen *ids) string {
			t.Helper()
			return rawServer92(t, func(c net.Conn, br *bufio.Reader) {
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				seen.add(req.Header.Get("X-Request-Id"))
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
				time.Sleep(20 * time.Millisecond)
				_ = c.(*net.TCPConn).SetLinger(0)
			})
		}, policy: &resource.RetryPolicy{RetryOn: []string{"5xx", "reset"}, NumRetries: 2},
			want: want{200, "UC", "upstream_reset_after_response_started{connection_termination}", 1, "", 1}},
		{name: "slow headers, per-try timeout", method: "GET", up: func(t testing.TB, seen *ids) string {
			t.Helper()
			return rawServer92(t, func(c net.Conn, br *bufio.Reader) {
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				seen.add(req.Header.Get("X-Request-Id"))
				_, _ = io.Copy(io.Discard, req.Body)
				_, _ = br.ReadByte() // until the proxy gives up
			})
		}, policy: &resource.RetryPolicy{RetryOn: []string{"5xx"}, NumRetries: 1, PerTryTimeout: 50 * time.Millisecond, BackOffBase: time.Millisecond},
			want: want{504, "UT,URX", "upstream_per_try_timeout", 2, "upstream request timeout", 2}},
		{name: "503 then 200", method: "GET", up: func(t testing.TB, seen *ids) string {
			t.Helper()
			return rawServer92(t, func(c net.Conn, br *bufio.Reader) {
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					seen.add(req.Header.Get("X-Request-Id"))
					if n.Add(1) == 1 {
						_, _ = io.WriteString(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy")
						continue
					}
					_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				}
			})
		}, policy: &resource.RetryPolicy{RetryOn: []string{"gateway-error"}, NumRetries: 2, BackOffBase: time.Millisecond},
			want: want{200, "-", "via_upstream", 2, "ok", 2}},
		{name: "refused connection, Istio default policy", method: "POST", up: func(t testing.TB, _ *ids) string {
			t.Helper()
			ln := listen92(t)
			addr := ln.Addr().String()
			_ = ln.Close()
			return addr
		}, policy: istioDefaultRetry(),
			want: want{503, "UF,URX", "upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_Connection_refused}", 3,
				"upstream connect error or disconnect/reset before headers. retried and the latest reset reason: remote connection failure, transport failure reason: delayed connect error: Connection refused", 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			seen := &ids{}
			rt := toCluster("c")
			rt.Action.RetryPolicy = tc.policy
			e := newEnv(t, routes(rt), static("c", tc.up(t, seen)))
			req, _ := http.NewRequest(tc.method, e.url+"/", strings.NewReader("payload"))
			req.Host = "svc:9080"
			req.Header.Set("X-Request-Id", "rq")
			resp, err := e.h1.Do(req)
			var code int
			var body string
			if err == nil {
				code = resp.StatusCode
				b, _ := io.ReadAll(resp.Body)
				body = string(b)
				_ = resp.Body.Close()
			}
			info := e.info()
			w := tc.want
			if code != w.code || info.Flags.String() != w.flags || info.ResponseCodeDetails != w.details || info.Attempts != w.attempts {
				t.Fatalf("got %d %s %s attempts %d (%s), want %d %s %s attempts %d", code, info.Flags, info.ResponseCodeDetails,
					info.Attempts, info.LucidError, w.code, w.flags, w.details, w.attempts)
			}
			if w.body != "" && body != w.body {
				t.Fatalf("body %q, want %q", body, w.body)
			}
			if code >= 500 && info.LucidError == "" {
				t.Fatal("no x-lucid-error")
			}
			if got := seen.count("rq"); got > w.maxSeen {
				t.Fatalf("the upstream saw the request %d times, want at most %d", got, w.maxSeen)
			}
		})
	}
}

func rawServer92(t testing.TB, serve func(c net.Conn, br *bufio.Reader)) string {
	t.Helper()
	ln := listen92(t)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serve(c, bufio.NewReader(c))
			}()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// TestOutlierEjection: one of three hosts always answers 500; with consecutive5xxErrors 2
// it is ejected at once, gets no traffic for the ejection time, then comes back.
func TestOutlierEjection(t *testing.T) {
	var bad atomic.Int64
	good := func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }
	up := []string{
		backend92(t, func(w http.ResponseWriter, r *http.Request) { bad.Add(1); w.WriteHeader(500) }),
		backend92(t, good), backend92(t, good),
	}
	c := static("c", up...)
	c.LBPolicy = resource.RoundRobin
	c.HealthyPanicThreshold = 0
	c.OutlierDetection = &resource.OutlierDetection{
		Consecutive5xx: 2, EnforcingConsecutive5xx: 100, Interval: time.Second,
		BaseEjectionTime: 300 * time.Millisecond, MaxEjectionTime: 300 * time.Second, MaxEjectionPercent: 50,
	}
	e := newEnv(t, routes(toCluster("c")), c)
	for range 6 { // round robin: the bad host answers twice
		e.get("/")
		e.info()
	}
	if bad.Load() != 2 {
		t.Fatalf("bad host saw %d requests before ejection, want 2", bad.Load())
	}
	var badHost = e.cm.Get("c").Hosts()[0]
	if !badHost.Ejected() {
		t.Fatal("the failing host is not ejected")
	}
	for range 10 {
		if got := e.get("/"); got.code != 200 {
			t.Fatalf("while ejected: %d", got.code)
		}
		e.info()
	}
	if bad.Load() != 2 {
		t.Fatalf("the ejected host got traffic")
	}
	if n := e.cm.Get("c").Stats().OutlierEjectionsEnforced.Load(); n != 1 {
		t.Fatalf("ejections_enforced_total %d", n)
	}
	// Requests keep coming until one reaches the host again.
	testutil.Eventually(t, 5*time.Second, "the ejected host readmitted after its ejection time", func() bool {
		if bad.Load() != 2 {
			return true
		}
		e.get("/")
		e.info()
		return false
	})
}

// TestAllEjected: when every host is ejected the request gets 503 UH saying so.
func TestAllEjected(t *testing.T) {
	up := backend92(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
	c := static("c", up)
	c.HealthyPanicThreshold = 0
	c.OutlierDetection = &resource.OutlierDetection{Consecutive5xx: 1, EnforcingConsecutive5xx: 100,
		Interval: time.Second, BaseEjectionTime: time.Minute, MaxEjectionTime: time.Minute, MaxEjectionPercent: 100}
	e := newEnv(t, routes(toCluster("c")), c)
	if got := e.get("/"); got.code != 503 {
		t.Fatalf("first: %d", got.code)
	}
	e.info()
	got := e.get("/")
	info := e.info()
	le := got.hdr.Get("X-Lucid-Error")
	if got.code != 503 || got.body != "no healthy upstream" || info.Flags != streaminfo.NoHealthyUpstream ||
		!strings.Contains(le, "is ejected by outlier detection (") || !strings.Contains(le, "consecutive_5xx") {
		t.Fatalf("got %d %q %s %q", got.code, got.body, info.Flags, le)
	}
}

// TestCircuitBreakers: max_requests and max_pending_requests overflow with 503 UO naming
// the limit; max_retries overflow returns the failure with UO added.
func TestCircuitBreakers(t *testing.T) {
	release := make(chan struct{})
	var started sync.WaitGroup
	up := backend92(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			started.Done()
			<-release
		}
		w.WriteHeader(503)
	})
	t.Run("max_requests", func(t *testing.T) {
		c := static("c", up)
		c.MaxRequests = 1
		e := newEnv(t, routes(toCluster("c")), c)
		started.Add(1)
		done := make(chan struct{})
		go func() { defer close(done); e.get("/hold"); e.info() }()
		started.Wait()
		got := e.get("/")
		info := e.info()
		release <- struct{}{}
		<-done
		if got.code != 503 || info.Flags != streaminfo.UpstreamOverflow ||
			got.body != "upstream connect error or disconnect/reset before headers. reset reason: overflow" ||
			!strings.Contains(got.hdr.Get("X-Lucid-Error"), "max_requests 1 reached (DestinationRule trafficPolicy.connectionPool.http.http2MaxRequests)") {
			t.Fatalf("got %d %s %q %q", got.code, info.Flags, got.body, got.hdr.Get("X-Lucid-Error"))
		}
	})
	t.Run("max_pending_requests", func(t *testing.T) {
		c := static("c", up)
		c.MaxConnections, c.MaxPendingRequests = 1, 1
		e := newEnv(t, routes(toCluster("c")), c)
		started.Add(1)
		done := make(chan struct{}, 2)
		go func() { e.get("/hold"); done <- struct{}{} }()
		started.Wait()
		go func() { e.get("/"); done <- struct{}{} }() // waits for the connection
		testutil.Eventually(t, 5*time.Second, "the condition", func() bool { return e.cm.Get("c").Stats().UpstreamRqPendingActive.Load() == 1 })
		got := e.get("/")
		release <- struct{}{}
		<-done
		<-done
		if got.code != 503 || !strings.Contains(got.hdr.Get("X-Lucid-Error"), "UO: circuit breaker of cluster c open: max_pending_requests 1 reached") {
			t.Fatalf("got %d %q", got.code, got.hdr.Get("X-Lucid-Error"))
		}
	})
	t.Run("max_retries", func(t *testing.T) {
		c := static("c", up)
		c.MaxRetries = 1
		rt := toCluster("c")
		rt.Action.RetryPolicy = &resource.RetryPolicy{RetryOn: []string{"5xx"}, NumRetries: 1, BackOffBase: time.Millisecond}
		e := newEnv(t, routes(rt), c)
		e.cm.Get("c").Stats().RetriesActive.Store(1) // another request's retry is in flight
		got := e.get("/")
		info := e.info()
		if got.code != 503 || info.Flags != streaminfo.UpstreamOverflow || info.Attempts != 1 {
			t.Fatalf("got %d %s attempts %d", got.code, info.Flags, info.Attempts)
		}
		if n := e.cm.Get("c").Stats().UpstreamRqRetryOverflow.Load(); n != 1 {
			t.Fatalf("upstream_rq_retry_overflow %d", n)
		}
	})
}

// TestConsistentHash: requests with the same header value go to the same host; a cookie
// policy with a TTL sets the cookie.
func TestConsistentHash(t *testing.T) {
	var hosts []string
	for range 4 {
		addr := backend92(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, r.Host) })
		hosts = append(hosts, addr)
	}
	for _, lb := range []resource.LBPolicy{resource.RingHash, resource.Maglev} {
		c := static("c", hosts...)
		c.LBPolicy = lb
		rt := toCluster("c")
		rt.Action.HashPolicy = []resource.HashPolicy{{Header: "x-user"}, {Cookie: &resource.CookieHash{Name: "sticky", HasTTL: true, TTL: time.Hour, Path: "/"}}}
		e := newEnv(t, routes(rt), c)
		byUser := map[string]map[string]bool{}
		// 32 users, each twice: with the hosts on new ports each run, five users landed on
		// one host now and then (a ring's shares are uneven); 32 never all do.
		for i := range 64 {
			user := fmt.Sprintf("user%d", i%32)
			req, _ := http.NewRequest("GET", e.url+"/", nil)
			req.Host = "svc:9080"
			req.Header.Set("X-User", user)
			req.AddCookie(&http.Cookie{Name: "sticky", Value: "s1"})
			e.do(e.h1, req)
			info := e.info()
			if byUser[user] == nil {
				byUser[user] = map[string]bool{}
			}
			byUser[user][info.UpstreamHost] = true
		}
		used := map[string]bool{}
		for u, hs := range byUser {
			if len(hs) != 1 {
				t.Fatalf("%v: %s went to %d hosts", lb, u, len(hs))
			}
			for h := range hs {
				used[h] = true
			}
		}
		if len(used) < 2 {
			t.Errorf("%v: 32 users all hashed to one host", lb)
		}
		req, _ := http.NewRequest("GET", e.url+"/", nil)
		req.Host = "svc:9080"
		got := e.do(e.h1, req)
		e.info()
		if sc := got.hdr.Get("Set-Cookie"); !strings.HasPrefix(sc, "sticky=") || !strings.Contains(sc, "Max-Age=3600") {
			t.Errorf("%v: Set-Cookie %q", lb, sc)
		}
	}
}

func backend92(t testing.TB, h http.HandlerFunc) string {
	t.Helper()
	return testutil.Backend(t, "127.0.92.2:0", h)
}
