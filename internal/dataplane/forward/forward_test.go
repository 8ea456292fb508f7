package forward_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

func TestLocalReplies(t *testing.T) {
	refused := refusedAddr(t)
	closer := rawBackend(t, func(c net.Conn, br *bufio.Reader, _ int) {
		if req, err := http.ReadRequest(br); err == nil {
			_, _ = io.Copy(io.Discard, req.Body)
		}
	})
	hang := make(chan struct{})
	defer close(hang)
	slow := backend(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	})
	ncName := "outbound|9080|v3|reviews.default.svc.cluster.local"
	retry := istioDefaultRetry()

	tests := []struct {
		name     string
		rc       *resource.RouteConfig
		clusters []*resource.Cluster
		method   string
		code     int
		body     string
		flags    string
		details  string
		lucid    string // exact x-lucid-error, or a regexp when it starts with "^"
		attempts int
	}{
		{
			name: "no route", method: "GET",
			rc: routes(resource.Route{Name: "only", Match: resource.RouteMatch{PathKind: resource.PathExact, Path: "/only"},
				Action: &resource.RouteAction{Cluster: "c"}}),
			code: 404, flags: "NR", details: "route_not_found", lucid: "^NR: .+",
		},
		{
			name: "route config not arrived", method: "GET",
			code: 404, flags: "NR", details: "route_not_found",
			lucid: `NR: route configuration "9080" has not arrived from the control plane yet`,
		},
		{
			name: "undefined subset", method: "GET", rc: routes(toCluster(ncName)),
			code: 503, flags: "NC", details: "cluster_not_found",
			lucid: `NC: cluster "outbound|9080|v3|reviews.default.svc.cluster.local" not found: no DestinationRule defines subset "v3" for reviews.default.svc.cluster.local`,
		},
		{
			name: "no endpoints", method: "GET", rc: routes(toCluster("c")), clusters: []*resource.Cluster{static("c")},
			code: 503, body: "no healthy upstream", flags: "UH", details: "no_healthy_upstream", lucid: "^UH: .+",
		},
		{
			name: "connection refused with Istio's default retries", method: "GET",
			rc: func() *resource.RouteConfig {
				r := toCluster("c")
				r.Action.RetryPolicy = retry
				return routes(r)
			}(),
			clusters: []*resource.Cluster{static("c", refused)},
			code:     503,
			body:     "upstream connect error or disconnect/reset before headers. retried and the latest reset reason: remote connection failure, transport failure reason: delayed connect error: Connection refused",
			flags:    "UF,URX",
			details:  "upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_Connection_refused}",
			lucid: "UF,URX: connect to " + refused + " for cluster c failed: connection refused (3 attempts); retry limit 2 exhausted " +
				"(retry_on connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes)",
			attempts: 3,
		},
		{
			name: "connection refused without retry policy", method: "GET", rc: routes(toCluster("c")),
			clusters: []*resource.Cluster{static("c", refused)},
			code:     503,
			body:     "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure, transport failure reason: delayed connect error: Connection refused",
			flags:    "UF",
			details:  "upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_Connection_refused}",
			lucid:    "UF: connect to " + refused + " for cluster c failed: connection refused (1 attempt)",
			attempts: 1,
		},
		{
			name: "upstream closes after reading a POST", method: "POST",
			rc: func() *resource.RouteConfig {
				r := toCluster("c")
				r.Action.RetryPolicy = retry // Istio's default does not retry a connection termination
				return routes(r)
			}(),
			clusters: []*resource.Cluster{static("c", closer)},
			code:     503,
			body:     "upstream connect error or disconnect/reset before headers. reset reason: connection termination",
			flags:    "UC",
			details:  "upstream_reset_before_response_started{connection_termination}",
			lucid:    "UC: upstream " + closer + " (cluster c) closed the connection before response headers (1 attempt)",
			attempts: 1,
		},
		{
			name: "route timeout", method: "GET",
			rc: func() *resource.RouteConfig {
				r := toCluster("c")
				r.Action.Timeout = 50 * time.Millisecond
				return routes(r)
			}(),
			clusters: []*resource.Cluster{static("c", slow)},
			code:     504, body: "upstream request timeout", flags: "UT", details: "upstream_response_timeout",
			lucid:    `UT: cluster c did not answer within the route timeout 50ms (route "r") (1 attempt)`,
			attempts: 1,
		},
		{
			name: "fault abort", method: "GET",
			rc: func() *resource.RouteConfig {
				r := toCluster("c")
				r.Fault = &resource.Fault{AbortPercent: 100, AbortStatus: 418, AbortGRPC: -1}
				return routes(r)
			}(),
			clusters: []*resource.Cluster{static("c", refused)},
			code:     418, body: "fault filter abort", flags: "FI", details: "fault_filter_abort",
			lucid: `FI: fault injection aborted the request with 418 (route "r")`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.rc, tt.clusters...)
			req, err := http.NewRequest(tt.method, e.url+"/x", strings.NewReader("payload"))
			if err != nil {
				t.Fatal(err)
			}
			req.Host = "svc:9080"
			got := e.do(e.h1, req)
			info := e.info()
			if got.code != tt.code || got.body != tt.body {
				t.Errorf("got %d %q, want %d %q", got.code, got.body, tt.code, tt.body)
			}
			if info.Flags.String() != tt.flags || info.ResponseCodeDetails != tt.details || info.ResponseCode != tt.code {
				t.Errorf("info: %d %s %s, want %d %s %s", info.ResponseCode, info.Flags, info.ResponseCodeDetails, tt.code, tt.flags, tt.details)
			}
			lucid := got.hdr.Get("X-Lucid-Error")
			if strings.HasPrefix(tt.lucid, "^") {
				if !regexp.MustCompile(tt.lucid).MatchString(lucid) {
					t.Errorf("x-lucid-error %q, want match %s", lucid, tt.lucid)
				}
			} else if lucid != tt.lucid {
				t.Errorf("x-lucid-error\n got %q\nwant %q", lucid, tt.lucid)
			}
			if info.LucidError != lucid {
				t.Errorf("info.LucidError %q != header %q", info.LucidError, lucid)
			}
			if s := got.hdr.Get("Server"); s != "istio-envoy" {
				t.Errorf("server %q, want istio-envoy", s)
			}
			if tt.body != "" && got.hdr.Get("Content-Type") != "text/plain" {
				t.Errorf("content-type %q, want text/plain", got.hdr.Get("Content-Type"))
			}
			if info.Attempts != tt.attempts {
				t.Errorf("attempts %d, want %d", info.Attempts, tt.attempts)
			}
		})
	}
}

func TestHappyPath(t *testing.T) {
	var seen atomic.Pointer[http.Request]
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.Clone(r.Context()))
		w.Header().Set("Connection", "keep-alive, X-Up-Hop")
		w.Header().Set("X-Up-Hop", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-App", "reviews")
		_, _ = io.WriteString(w, "hello")
	})
	rt := toCluster("c")
	rt.RequestHeadersToAdd = []resource.HeaderValueOption{{Key: "x-route", Value: "yes"}}
	rt.ResponseHeadersToAdd = []resource.HeaderValueOption{{Key: "x-resp", Value: "added"}}
	e := newEnv(t, routes(rt), static("c", up))

	req, _ := http.NewRequest(http.MethodGet, e.url+"/p?q=1", nil)
	req.Host = "svc:9080"
	req.Header.Set("Connection", "Keep-Alive ,X-Hop")
	req.Header.Set("X-Hop", "secret")
	req.Header.Set("Proxy-Authorization", "Basic x")
	got := e.do(e.h1, req)
	info := e.info()

	if got.code != 200 || got.body != "hello" {
		t.Fatalf("got %d %q", got.code, got.body)
	}
	if got.hdr.Get("X-Up-Hop") != "" || got.hdr.Get("Keep-Alive") != "" {
		t.Errorf("hop-by-hop response headers leaked: %v", got.hdr)
	}
	if got.hdr.Get("X-App") != "reviews" || got.hdr.Get("X-Resp") != "added" {
		t.Errorf("response headers: %v", got.hdr)
	}
	if !regexp.MustCompile(`^\d+$`).MatchString(got.hdr.Get("X-Envoy-Upstream-Service-Time")) {
		t.Errorf("x-envoy-upstream-service-time %q", got.hdr.Get("X-Envoy-Upstream-Service-Time"))
	}
	if got.hdr.Get("X-Lucid-Error") != "" {
		t.Errorf("x-lucid-error on success: %q", got.hdr.Get("X-Lucid-Error"))
	}
	r := seen.Load()
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	if !uuid.MatchString(r.Header.Get("X-Request-Id")) || r.Header.Get("X-Request-Id") != info.RequestID {
		t.Errorf("x-request-id %q (info %q)", r.Header.Get("X-Request-Id"), info.RequestID)
	}
	for _, h := range []string{"X-Hop", "Proxy-Authorization", "Connection"} {
		if r.Header.Get(h) != "" {
			t.Errorf("hop-by-hop request header %s reached the upstream", h)
		}
	}
	if r.Header.Get("X-Route") != "yes" || r.Header.Get("X-Forwarded-Proto") != "http" ||
		r.Header.Get("X-Envoy-Attempt-Count") != "1" || r.Host != "svc:9080" || r.URL.RequestURI() != "/p?q=1" {
		t.Errorf("upstream request: host %q uri %q headers %v", r.Host, r.URL.RequestURI(), r.Header)
	}
	if info.Flags.String() != "-" || info.ResponseCodeDetails != "via_upstream" || info.UpstreamHost != up ||
		info.UpstreamCluster != "c" || info.BytesSent != 5 || info.Destination.Workload != "reviews-v1" ||
		info.Destination.App != "reviews" || info.UpstreamLocalAddress == "" || info.RouteName != "r" {
		t.Errorf("info: %+v", info)
	}

	// A request id from the client is kept.
	req, _ = http.NewRequest(http.MethodGet, e.url+"/", nil)
	req.Host = "svc:9080"
	req.Header.Set("X-Request-Id", "abc")
	e.do(e.h1, req)
	e.info()
	if id := seen.Load().Header.Get("X-Request-Id"); id != "abc" {
		t.Errorf("x-request-id %q, want the client's abc", id)
	}
}

func TestStreamingFlushes(t *testing.T) {
	release := make(chan struct{})
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-release
		_, _ = io.WriteString(w, "data: last\n\n")
	})
	e := newEnv(t, routes(toCluster("c")), static("c", up))
	req, _ := http.NewRequest(http.MethodGet, e.url+"/events", nil)
	req.Host = "svc:9080"
	resp, err := e.h1.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("first event %q, %v: the proxy buffered the stream", line, err)
	}
	close(release)
	rest, _ := io.ReadAll(br)
	if string(rest) != "\ndata: last\n\n" {
		t.Fatalf("rest %q", rest)
	}
	e.info()
}

func TestRetries(t *testing.T) {
	t.Run("reset retried with retry_on reset", func(t *testing.T) {
		up := rawBackend(t, func(c net.Conn, br *bufio.Reader, n int) {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			if n == 0 {
				return // close without answering
			}
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		})
		rt := toCluster("c")
		rt.Action.RetryPolicy = &resource.RetryPolicy{RetryOn: []string{"reset"}, NumRetries: 2, BackOffBase: time.Millisecond}
		e := newEnv(t, routes(rt), static("c", up))
		got := e.get("/")
		info := e.info()
		if got.code != 200 || got.body != "ok" || info.Attempts != 2 || info.Flags.String() != "-" {
			t.Fatalf("got %d %q attempts %d flags %s", got.code, got.body, info.Attempts, info.Flags)
		}
		if n := e.cm.Get("c").Stats().UpstreamRqRetry.Load(); n != 1 {
			t.Fatalf("upstream_rq_retry %d, want 1", n)
		}
	})

	t.Run("per-try timeout then second host", func(t *testing.T) {
		hang := make(chan struct{})
		defer close(hang)
		slow := backend(t, func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-hang:
			case <-r.Context().Done():
			}
		})
		fast := backend(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "fast") })
		rt := toCluster("c")
		rt.Action.RetryPolicy = &resource.RetryPolicy{RetryOn: []string{"5xx"}, NumRetries: 1,
			PerTryTimeout: 50 * time.Millisecond, AvoidPreviousHosts: true, BackOffBase: time.Millisecond}
		c := static("c", slow, fast)
		c.LBPolicy = resource.RoundRobin // the first pick is the slow host
		e := newEnv(t, routes(rt), c)
		got := e.get("/")
		info := e.info()
		if got.code != 200 || got.body != "fast" || info.Attempts != 2 || info.UpstreamHost != fast {
			t.Fatalf("got %d %q attempts %d host %s", got.code, got.body, info.Attempts, info.UpstreamHost)
		}
		if n := e.cm.Get("c").Stats().UpstreamRqPerTryTimeout.Load(); n != 1 {
			t.Fatalf("upstream_rq_per_try_timeout %d, want 1", n)
		}
	})

	t.Run("503 then 200 with retriable status codes, POST body replayed", func(t *testing.T) {
		var n atomic.Int32
		var lastCount, lastBody atomic.Value
		up := backend(t, func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			lastBody.Store(string(b))
			lastCount.Store(r.Header.Get("X-Envoy-Attempt-Count"))
			if n.Add(1) == 1 {
				w.WriteHeader(503)
				return
			}
			_, _ = io.WriteString(w, "second")
		})
		rt := toCluster("c")
		rt.Action.RetryPolicy = istioDefaultRetry()
		rt.Action.RetryPolicy.RetriableStatusCodes = []uint32{503}
		rt.Action.RetryPolicy.BackOffBase = time.Millisecond
		e := newEnv(t, routes(rt), static("c", up))
		req, _ := http.NewRequest(http.MethodPost, e.url+"/", strings.NewReader("the body"))
		req.Host = "svc:9080"
		got := e.do(e.h1, req)
		info := e.info()
		if got.code != 200 || got.body != "second" || info.Attempts != 2 {
			t.Fatalf("got %d %q attempts %d", got.code, got.body, info.Attempts)
		}
		if lastCount.Load() != "2" || lastBody.Load() != "the body" {
			t.Fatalf("second attempt: count %v body %q", lastCount.Load(), lastBody.Load())
		}
		if info.BytesReceived != 8 {
			t.Fatalf("bytes received %d, want 8", info.BytesReceived)
		}
	})

	t.Run("retriable response with budget spent is passed through with URX", func(t *testing.T) {
		up := backend(t, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(503)
			_, _ = io.WriteString(w, "app says no")
		})
		rt := toCluster("c")
		rt.Action.RetryPolicy = &resource.RetryPolicy{RetryOn: []string{"5xx"}, NumRetries: 1, BackOffBase: time.Millisecond}
		e := newEnv(t, routes(rt), static("c", up))
		got := e.get("/")
		info := e.info()
		if got.code != 503 || got.body != "app says no" || info.Flags.String() != "URX" || info.Attempts != 2 {
			t.Fatalf("got %d %q flags %s attempts %d", got.code, got.body, info.Flags, info.Attempts)
		}
	})
}

func TestRedirectDirectResponseAndDelay(t *testing.T) {
	up := backend(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "up") })
	delayed := toCluster("c")
	delayed.Match.Path = "/delay"
	delayed.Fault = &resource.Fault{DelayPercent: 100, Delay: 30 * time.Millisecond, AbortGRPC: -1}
	rc := routes(
		resource.Route{Name: "redir", Match: resource.RouteMatch{PathKind: resource.PathExact, Path: "/old"},
			Redirect: &resource.Redirect{Path: "/new", Code: 302}},
		resource.Route{Name: "direct", Match: resource.RouteMatch{PathKind: resource.PathExact, Path: "/direct"},
			DirectResponse: &resource.DirectResponse{Status: 200, Body: "hello direct"}},
		delayed,
	)
	e := newEnv(t, rc, static("c", up))
	e.h1.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	got := e.get("/old")
	info := e.info()
	if got.code != 302 || got.hdr.Get("Location") != "http://svc:9080/new" || info.ResponseCodeDetails != "direct_response" {
		t.Errorf("redirect: %d %q %s", got.code, got.hdr.Get("Location"), info.ResponseCodeDetails)
	}
	got = e.get("/direct")
	e.info()
	if got.code != 200 || got.body != "hello direct" {
		t.Errorf("direct response: %d %q", got.code, got.body)
	}
	got = e.get("/delay")
	info = e.info()
	if got.code != 200 || got.body != "up" || info.Flags.String() != "DI" || info.Duration < 30*time.Millisecond {
		t.Errorf("delay: %d %q flags %s duration %v", got.code, got.body, info.Flags, info.Duration)
	}
}

func TestWeightedSplit(t *testing.T) {
	a := backend(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "a") })
	b := backend(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "b") })
	rt := resource.Route{Name: "split", Match: resource.RouteMatch{PathKind: resource.PathPrefix, Path: "/"},
		Action: &resource.RouteAction{WeightedClusters: []resource.WeightedCluster{{Name: "ca", Weight: 50}, {Name: "cb", Weight: 50}}}}
	e := newEnv(t, routes(rt), static("ca", a), static("cb", b))
	seen := map[string]int{}
	for range 100 {
		got := e.get("/")
		e.info()
		seen[got.body]++
	}
	if seen["a"] == 0 || seen["b"] == 0 || seen["a"]+seen["b"] != 100 {
		t.Fatalf("split %v, want both clusters", seen)
	}
}

func TestH2C(t *testing.T) {
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/grpc")
		_, _ = fmt.Fprint(w, r.Proto)
		w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
		w.Header().Set(http.TrailerPrefix+"Grpc-Message", "fine")
	})
	c := static("c", up)
	c.Protocol = resource.HTTP2
	e := newEnv(t, routes(toCluster("c")), c)
	req, _ := http.NewRequest(http.MethodPost, e.url+"/pkg.Svc/Method", strings.NewReader("msg"))
	req.Host = "svc:9080"
	req.Header.Set("Te", "trailers")
	got := e.do(e.h2c, req)
	info := e.info()
	if got.code != 200 || got.body != "HTTP/2.0" {
		t.Fatalf("got %d %q, want the upstream to see HTTP/2.0", got.code, got.body)
	}
	if got.trl.Get("Grpc-Status") != "0" || got.trl.Get("Grpc-Message") != "fine" {
		t.Fatalf("trailers %v", got.trl)
	}
	if info.Protocol != "HTTP/2" || info.GRPCStatus != "0" {
		t.Fatalf("info protocol %q grpc-status %q", info.Protocol, info.GRPCStatus)
	}
}

func TestPoolUpdate(t *testing.T) {
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			_, _ = io.WriteString(w, "first ")
			w.(http.Flusher).Flush()
			started <- struct{}{}
			<-release
		}
		_, _ = io.WriteString(w, "done")
	})
	e := newEnv(t, routes(toCluster("c")), static("c", up))
	e.get("/")
	e.info()

	// Unchanged connection settings: the connection is reused.
	e.clusters["c"] = static("c", up)
	e.apply()
	e.get("/")
	e.info()
	if n := e.cm.Get("c").Stats().UpstreamCxTotal.Load(); n != 1 {
		t.Fatalf("upstream_cx_total %d after an unchanged update, want 1", n)
	}

	// A request in flight survives its cluster's removal.
	done := make(chan result)
	go func() { done <- e.get("/slow") }()
	<-started
	e.clusters = map[string]*resource.Cluster{}
	e.apply()
	close(release)
	got := <-done
	e.info()
	if got.code != 200 || got.body != "first done" {
		t.Fatalf("in-flight request across update: %d %q", got.code, got.body)
	}
}

func TestMirror(t *testing.T) {
	hosts := make(chan string, 1)
	shadow := backend(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hosts <- r.Host + " " + string(b)
	})
	up := backend(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.ReadAll(r.Body) })
	rt := toCluster("c")
	rt.Action.Mirrors = []resource.Mirror{{Cluster: "m", Percent: 100}}
	e := newEnv(t, routes(rt), static("c", up), static("m", shadow))
	req, _ := http.NewRequest(http.MethodPost, e.url+"/", strings.NewReader("copy me"))
	req.Host = "svc:9080"
	e.do(e.h1, req)
	e.info()
	select {
	case h := <-hosts:
		if h != "svc-shadow:9080 copy me" {
			t.Fatalf("mirror saw %q", h)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("mirror not sent")
	}
}

func BenchmarkForward(b *testing.B) {
	payload := strings.Repeat("x", 1024)
	up := backend(b, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, payload) })
	e := newEnv(b, routes(toCluster("c")), static("c", up))
	e.roundTrips(b) // telemetry_bench_test.go
}

// TestUpstreamServiceTimeEndsAtTheHead: x-envoy-upstream-service-time (and the record's
// upstream service time) runs from the request going out to the answer's head, whether
// the body comes with the head or long after it, on a new connection and on a reused one
// (where the pool takes the attempt's clock readings instead of its own).
func TestUpstreamServiceTimeEndsAtTheHead(t *testing.T) {
	const headDelay, bodyDelay = 80 * time.Millisecond, 300 * time.Millisecond
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(headDelay)
		w.Header().Set("Content-Length", "5")
		if r.URL.Path == "/late-body" {
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			time.Sleep(bodyDelay)
		}
		_, _ = io.WriteString(w, "hello")
	})
	e := newEnv(t, routes(toCluster("c")), static("c", up))
	first := ""
	for i, path := range []string{"/with-body", "/late-body", "/with-body", "/late-body"} {
		got := e.get(path)
		info := e.info()
		if got.code != 200 || got.body != "hello" {
			t.Fatalf("request %d (%s): %d %q", i, path, got.code, got.body)
		}
		ms, err := strconv.Atoi(got.hdr.Get("X-Envoy-Upstream-Service-Time"))
		if err != nil {
			t.Fatalf("request %d (%s): x-envoy-upstream-service-time %q", i, path, got.hdr.Get("X-Envoy-Upstream-Service-Time"))
		}
		if d := time.Duration(ms) * time.Millisecond; d < headDelay || d >= bodyDelay {
			t.Errorf("request %d (%s): x-envoy-upstream-service-time %v, want from %v (the head's delay) to under %v (the body's)", i, path, d, headDelay, bodyDelay)
		}
		if d := info.UpstreamServiceTime; d < headDelay || d >= bodyDelay {
			t.Errorf("request %d (%s): recorded upstream service time %v, want from %v to under %v", i, path, d, headDelay, bodyDelay)
		}
		if i == 0 {
			first = info.UpstreamLocalAddress
		} else if info.UpstreamLocalAddress != first {
			t.Errorf("request %d (%s) went on upstream connection %s, not the first one's %s: the reused connection's path is not exercised", i, path, info.UpstreamLocalAddress, first)
		}
	}
}
