package forward_test

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

// backend89 is an HTTP/1.1 + h2c upstream on the 127.0.89.0/24 test subnet.
func backend89(t testing.TB, ip string, h http.HandlerFunc) string {
	t.Helper()
	return testutil.Backend(t, ip+":0", h)
}

// TestH2PoolOverflow: an h2c cluster with maxConnections 1, maxConcurrentStreams 1 and
// http1MaxPendingRequests 1: one request streams, one waits, the third gets 503 UO with
// Envoy's body and an x-lucid-error naming the DestinationRule fields.
func TestH2PoolOverflow(t *testing.T) {
	release := make(chan struct{})
	var active atomic.Int64
	up := backend89(t, "127.0.89.2", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			active.Add(1)
			<-release
		}
		_, _ = w.Write([]byte(r.Proto))
	})
	c := static("h2", up)
	c.Protocol = resource.HTTP2
	c.MaxConnections, c.MaxPendingRequests, c.MaxConcurrentStreams = 1, 1, 1
	e := newEnv(t, routes(toCluster("h2")), c)

	var wg sync.WaitGroup
	got := make(chan result, 2)
	wg.Add(1)
	go func() { defer wg.Done(); got <- e.get("/hold") }()
	testutil.Eventually(t, 5*time.Second, "the condition", func() bool { return active.Load() == 1 })
	wg.Add(1)
	go func() { defer wg.Done(); got <- e.get("/hold") }()
	testutil.Eventually(t, 5*time.Second, "the condition", func() bool { return e.cm.Get("h2").Stats().UpstreamRqPendingActive.Load() == 1 })

	over := e.get("/")
	if over.code != 503 || over.body != "upstream connect error or disconnect/reset before headers. reset reason: overflow" ||
		!strings.HasPrefix(over.hdr.Get("X-Lucid-Error"), "UO: circuit breaker of cluster h2 open: max_pending_requests 1 reached (DestinationRule trafficPolicy.connectionPool.http.http1MaxPendingRequests") ||
		!strings.Contains(over.hdr.Get("X-Lucid-Error"), "maxConcurrentStreams") {
		t.Fatalf("third request: %d %q %q", over.code, over.body, over.hdr.Get("X-Lucid-Error"))
	}
	close(release)
	wg.Wait()
	for range 2 {
		if r := <-got; r.code != 200 || r.body != "HTTP/2.0" {
			t.Fatalf("held request: %d %q", r.code, r.body)
		}
	}
	var flags []streaminfo.Flag
	for range 3 {
		flags = append(flags, e.info().Flags)
	}
	if n := countFlag(flags, streaminfo.UpstreamOverflow); n != 1 {
		t.Fatalf("access log flags %v: want exactly one UO", flags)
	}
}

func countFlag(fs []streaminfo.Flag, f streaminfo.Flag) int {
	n := 0
	for _, x := range fs {
		if x&f != 0 {
			n++
		}
	}
	return n
}

// TestRetryRequestHeaders: the x-envoy-* retry and timeout headers change one request's
// policy, and never reach the upstream.
func TestRetryRequestHeaders(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{} // path → attempts
	var leaked atomic.Bool
	up := backend89(t, "127.0.89.3", func(w http.ResponseWriter, r *http.Request) {
		for k := range r.Header {
			if strings.HasPrefix(k, "X-Envoy-Retr") || strings.HasPrefix(k, "X-Envoy-Upstream-Rq") || k == "X-Envoy-Max-Retries" {
				leaked.Store(true)
			}
		}
		mu.Lock()
		seen[r.URL.Path]++
		n := seen[r.URL.Path]
		mu.Unlock()
		switch r.URL.Path {
		case "/503":
			w.WriteHeader(503)
		case "/418":
			w.WriteHeader(418)
		case "/hdr":
			w.Header().Set("X-Try-Again", "1")
		case "/grpc":
			w.Header().Set("Content-Type", "application/grpc")
			w.Header().Set("Grpc-Status", "14")
		case "/slow-first":
			if n == 1 {
				sleep(r, 300*time.Millisecond)
			}
		case "/slow":
			sleep(r, 300*time.Millisecond)
		}
	})
	tests := []struct {
		name     string
		policy   *resource.RetryPolicy // the route's
		timeout  time.Duration         // the route's
		path     string
		hdr      map[string]string
		code     int
		attempts int
		flag     streaminfo.Flag
	}{
		{"no headers, no policy", nil, 0, "/503", nil, 503, 1, 0},
		{"x-envoy-retry-on adds a policy with 1 retry", nil, 0, "/503",
			map[string]string{"x-envoy-retry-on": "5xx"}, 503, 2, streaminfo.UpstreamRetryLimitExceeded},
		{"x-envoy-max-retries", nil, 0, "/503",
			map[string]string{"x-envoy-retry-on": "gateway-error", "x-envoy-max-retries": "3"}, 503, 4, streaminfo.UpstreamRetryLimitExceeded},
		{"x-envoy-max-retries alone changes the route's count", &resource.RetryPolicy{RetryOn: []string{"5xx"}, NumRetries: 1, BackOffBase: time.Millisecond}, 0, "/503",
			map[string]string{"x-envoy-max-retries": "2"}, 503, 3, streaminfo.UpstreamRetryLimitExceeded},
		{"x-envoy-max-retries 0 stops the route's retries", &resource.RetryPolicy{RetryOn: []string{"5xx"}, NumRetries: 2, BackOffBase: time.Millisecond}, 0, "/503",
			map[string]string{"x-envoy-max-retries": "0"}, 503, 1, streaminfo.UpstreamRetryLimitExceeded},
		{"x-envoy-retriable-status-codes", nil, 0, "/418",
			map[string]string{"x-envoy-retry-on": "retriable-status-codes", "x-envoy-retriable-status-codes": "500, 418"}, 418, 2, streaminfo.UpstreamRetryLimitExceeded},
		{"status code not listed", nil, 0, "/418",
			map[string]string{"x-envoy-retry-on": "retriable-status-codes", "x-envoy-retriable-status-codes": "500"}, 418, 1, 0},
		{"x-envoy-retriable-header-names", nil, 0, "/hdr",
			map[string]string{"x-envoy-retry-on": "retriable-headers", "x-envoy-retriable-header-names": "x-other,X-Try-Again"}, 200, 2, streaminfo.UpstreamRetryLimitExceeded},
		{"x-envoy-retry-grpc-on", nil, 0, "/grpc",
			map[string]string{"x-envoy-retry-grpc-on": "unavailable"}, 200, 2, streaminfo.UpstreamRetryLimitExceeded},
		{"unknown condition ignored", nil, 0, "/503",
			map[string]string{"x-envoy-retry-on": "bogus"}, 503, 1, 0},
		{"x-envoy-upstream-rq-timeout-ms", nil, 0, "/slow",
			map[string]string{"x-envoy-upstream-rq-timeout-ms": "50"}, 504, 1, streaminfo.UpstreamRequestTimeout},
		{"x-envoy-upstream-rq-timeout-ms 0 disables the route timeout", nil, 50 * time.Millisecond, "/slow",
			map[string]string{"x-envoy-upstream-rq-timeout-ms": "0"}, 200, 1, 0},
		{"malformed timeout ignored", nil, 50 * time.Millisecond, "/slow",
			map[string]string{"x-envoy-upstream-rq-timeout-ms": "soon"}, 504, 1, streaminfo.UpstreamRequestTimeout},
		{"x-envoy-upstream-rq-per-try-timeout-ms with retries", nil, 0, "/slow-first",
			map[string]string{"x-envoy-retry-on": "5xx", "x-envoy-upstream-rq-per-try-timeout-ms": "50"}, 200, 2, 0},
		{"per-try timeout not below the route timeout is ignored", nil, 100 * time.Millisecond, "/slow",
			map[string]string{"x-envoy-retry-on": "5xx", "x-envoy-upstream-rq-per-try-timeout-ms": "100"}, 504, 1, streaminfo.UpstreamRequestTimeout},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt := toCluster("c")
			rt.Action.RetryPolicy = tc.policy
			rt.Action.Timeout = tc.timeout
			e := newEnv(t, routes(rt), static("c", up))
			path := tc.path + "?case=" + strconv.Itoa(i)
			mu.Lock()
			clear(seen)
			mu.Unlock()
			req, err := http.NewRequest(http.MethodGet, e.url+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = "svc:9080"
			for k, v := range tc.hdr {
				req.Header.Set(k, v)
			}
			got := e.do(e.h1, req)
			info := e.info()
			if got.code != tc.code || info.Attempts != tc.attempts || info.Flags != tc.flag {
				t.Fatalf("got %d, %d attempts, flags %q; want %d, %d, %q (x-lucid-error %q)",
					got.code, info.Attempts, info.Flags, tc.code, tc.attempts, tc.flag, got.hdr.Get("X-Lucid-Error"))
			}
		})
	}
	if leaked.Load() {
		t.Fatal("an x-envoy retry/timeout header reached the upstream")
	}
}

// sleep waits d or until the request is cancelled.
func sleep(r *http.Request, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}

// TestRetriesAvoidFailedHost: a retry never goes back to the host that just failed
// (previous_hosts, which Istio always sets), and with retryRemoteLocalities it goes to
// another locality before another host of the failed one.
func TestRetriesAvoidFailedHost(t *testing.T) {
	fail := func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }
	ok := func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }
	a1 := backend89(t, "127.0.89.4", fail)
	a2 := backend89(t, "127.0.89.5", fail)
	b := backend89(t, "127.0.89.6", ok)
	loc := func(c *resource.Cluster, locs ...string) {
		for i := range c.LoadAssignment.Endpoints {
			c.LoadAssignment.Endpoints[i].Locality = locs[i]
			if locs[i] != "r/a/" {
				c.LoadAssignment.Endpoints[i].Priority = 1
			}
		}
	}
	tests := []struct {
		name   string
		hosts  []string
		locs   []string
		remote bool
		want   int // successes of 20
	}{
		{"previous_hosts: the retry goes to the other host", []string{a1, b}, []string{"r/a/", "r/a/"}, false, 20},
		{"no remote localities: the retry stays in the failed locality", []string{a1, a2, b}, []string{"r/a/", "r/a/", "r/b/"}, false, 0},
		{"retryRemoteLocalities: the retry goes to the other locality", []string{a1, a2, b}, []string{"r/a/", "r/a/", "r/b/"}, true, 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := static("c", tc.hosts...)
			c.LBPolicy = resource.RoundRobin
			loc(c, tc.locs...)
			rt := toCluster("c")
			rt.Action.RetryPolicy = &resource.RetryPolicy{RetryOn: []string{"5xx"}, NumRetries: 1,
				AvoidPreviousHosts: true, RemoteLocalities: tc.remote, BackOffBase: time.Millisecond}
			e := newEnv(t, routes(rt), c)
			n := 0
			for range 20 {
				got := e.get("/")
				info := e.info()
				if got.code == 200 {
					n++
				}
				if info.Attempts != 2 {
					t.Fatalf("%d attempts, want 2", info.Attempts)
				}
			}
			if n != tc.want {
				t.Fatalf("%d of 20 succeeded, want %d", n, tc.want)
			}
		})
	}
}
