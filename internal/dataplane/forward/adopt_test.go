package forward_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/peermeta"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/testutil"
	"github.com/lucid-mesh/lucid/internal/testutil/upstreamtest"
)

// A plain upstream answer (HTTP/1.1, one Content-Length) goes downstream through h1server
// with its fields as received, without a header map; what the forwarder does to an
// answer's fields still happens: its grpc-status is recorded, a server's peer metadata is
// read (outbound) or replaced by this workload's (inbound) and never reaches the client,
// and hop-by-hop fields are removed.
func TestAdoptedAnswerFields(t *testing.T) {
	_, serverMeta, err := peermeta.Encode(peermeta.Workload{Name: "reviews-v1-abc", Namespace: "default",
		WorkloadName: "reviews-v1", ClusterID: "Kubernetes",
		Labels: map[string]string{"app": "reviews", "version": "v1", peermeta.LabelCanonicalRevision: "canary"}})
	if err != nil {
		t.Fatal(err)
	}
	answers := map[string]string{
		"/plain": "HTTP/1.1 200 OK\r\nServer: up\r\nX-B: 2\r\nContent-Length: 2\r\nX-A: 1\r\n\r\nok",
		"/grpc":  "HTTP/1.1 200 OK\r\nContent-Type: application/grpc\r\nGrpc-Status: 14\r\nContent-Length: 2\r\n\r\nok",
		"/meta": "HTTP/1.1 200 OK\r\nX-Envoy-Peer-Metadata-Id: sidecar~127.0.84.2~reviews\r\nX-Envoy-Peer-Metadata: " + serverMeta +
			"\r\nContent-Length: 2\r\n\r\nok",
		"/hop": "HTTP/1.1 200 OK\r\nKeep-Alive: timeout=60\r\nX-A: 1\r\nContent-Length: 2\r\n\r\nok",
		// An upstream that is itself a proxy: its service time is replaced, not repeated.
		"/ust":       "HTTP/1.1 200 OK\r\nX-Envoy-Upstream-Service-Time: 999\r\nContent-Length: 2\r\n\r\nok",
		"/cookie-up": "HTTP/1.1 200 OK\r\nSet-Cookie: up=1\r\nContent-Length: 2\r\n\r\nok",
	}
	// Which answers are passed on without a header map: those nothing changes.
	answered := recordAnswers(t)
	up := upstreamtest.Answers(t, "127.0.84.2", func(req *http.Request) string { return answers[req.URL.Path] })
	// A ring-hash cookie policy sets its cookie on the answer, beside the upstream's own
	// cookie when it sent one.
	t.Run("cookie", func(t *testing.T) {
		h := newHopDir(t, resource.HTTP1, up, h1Proxy, "outbound", func(rt *resource.Route, c *resource.Cluster) {
			c.LBPolicy = resource.RingHash
			rt.Action.HashPolicy = []resource.HashPolicy{{Cookie: &resource.CookieHash{Name: "sticky", HasTTL: true, TTL: time.Hour, Path: "/"}}}
		})
		for _, tc := range []struct{ path, upCookie string }{{"/plain", ""}, {"/cookie-up", "up=1"}} {
			req, _ := http.NewRequest(http.MethodGet, h.url+tc.path, nil)
			req.Host = "svc:9080"
			resp, err := h.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			cookies := resp.Header.Values("Set-Cookie")
			sticky := slices.IndexFunc(cookies, func(c string) bool { return strings.HasPrefix(c, "sticky=") }) >= 0
			if !sticky || tc.upCookie != "" && !slices.Contains(cookies, tc.upCookie) || answered.last(t).adopted {
				t.Fatalf("%s: cookies %q: want a sticky cookie beside the upstream's %q, through the map", tc.path, cookies, tc.upCookie)
			}
		}
	})
	for _, dir := range []string{"inbound", "outbound"} {
		t.Run(dir, func(t *testing.T) {
			h := newHopDir(t, resource.HTTP1, up, h1Proxy, dir)
			c, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			own := " X-Envoy-Upstream-Service-Time"
			if dir == "inbound" {
				own = " X-Envoy-Peer-Metadata X-Envoy-Peer-Metadata-Id" + own
			}
			cases := []struct {
				path, want string
				adopted    bool
			}{
				{"/plain", "Server X-B Content-Length X-A" + own, true},
				{"/grpc", "Content-Type Grpc-Status Content-Length" + own, true},
				{"/meta", "Content-Length" + own, false},
				{"/hop", "X-A Content-Length" + own, false},
				{"/ust", "Content-Length" + own, false},
			}
			for _, tc := range cases {
				if _, err := io.WriteString(c, "GET "+tc.path+" HTTP/1.1\r\nHost: svc:9080\r\n\r\n"); err != nil {
					t.Fatal(err)
				}
				lines := testutil.HeadLines(t, br)
				var names []string
				length := ""
				for _, line := range lines[1:] {
					name, value, _ := strings.Cut(line, ": ")
					if name == "Date" {
						continue
					}
					names = append(names, name)
					if name == "Content-Length" {
						length = value
					}
					if name == peermeta.HeaderMetadata && value == serverMeta {
						t.Errorf("%s %s: the server's peer metadata reached the client", dir, tc.path)
					}
					if name == "X-Envoy-Upstream-Service-Time" && value == "999" {
						t.Errorf("%s %s: the upstream's service time reached the client", dir, tc.path)
					}
				}
				if got := strings.Join(names, " "); got != tc.want {
					t.Errorf("%s %s: answer fields %q, want %q", dir, tc.path, got, tc.want)
				}
				if length == "2" {
					if _, err := io.ReadFull(br, make([]byte, 2)); err != nil {
						t.Fatal(err)
					}
				}
				info := h.info(t)
				a := answered.last(t)
				if a.adopted != tc.adopted {
					t.Errorf("%s %s: fields adopted %v, want %v", dir, tc.path, a.adopted, tc.adopted)
				}
				// The pool builds no map for an answer without hop-by-hop fields (all but
				// /hop): forward asks for the list when it would pass it on as received.
				if a.deferred != (tc.path != "/hop") {
					t.Errorf("%s %s: the answer's map left to be built %v, want %v", dir, tc.path, a.deferred, tc.path != "/hop")
				}
				switch tc.path {
				case "/grpc":
					if info.GRPCStatus != "14" {
						t.Errorf("%s: grpc-status recorded %q, want 14", dir, info.GRPCStatus)
					}
				case "/meta":
					if dir == "outbound" && info.Destination.CanonicalRevision != "canary" {
						t.Errorf("outbound: destination canonical revision %q, want the server's metadata's \"canary\"",
							info.Destination.CanonicalRevision)
					}
				}
			}
		})
	}
}

// An answer whose fields would go downstream as received comes from the pool without a
// header map (pool.FieldsAsker); the retry policy still reads its fields: a grpc-status the
// policy retries on, and a retriable header, send the request again, and the client gets
// the second answer, adopted.
func TestRetryReadsAnswersWithoutAMap(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	first := map[string]string{
		"/grpc":   "HTTP/1.1 200 OK\r\nGrpc-Status: 1\r\nContent-Length: 2\r\n\r\nno",
		"/header": "HTTP/1.1 200 OK\r\nX-Retry: please\r\nContent-Length: 2\r\n\r\nno",
		"/plain":  "HTTP/1.1 200 OK\r\nX-Other: 1\r\nContent-Length: 2\r\n\r\nno",
	}
	up := upstreamtest.Answers(t, "127.0.84.2", func(req *http.Request) string {
		mu.Lock()
		defer mu.Unlock()
		if seen[req.URL.Path]++; seen[req.URL.Path] == 1 {
			return first[req.URL.Path]
		}
		return "HTTP/1.1 200 OK\r\nX-Second: 1\r\nContent-Length: 2\r\n\r\nok"
	})
	answered := recordAnswers(t)
	// Each retry-on alone: one that reads the answer's map would build it for the others.
	for _, tc := range []struct{ retryOn, path, want string }{
		{"cancelled", "/grpc", "ok"}, {"retriable-headers", "/header", "ok"},
		{"cancelled", "/plain", "no"}, {"retriable-headers", "/plain", "no"},
	} {
		h := newHopDir(t, resource.HTTP1, up, h1Proxy, "outbound", func(rt *resource.Route, _ *resource.Cluster) {
			rt.Action.RetryPolicy = &resource.RetryPolicy{RetryOn: []string{tc.retryOn}, NumRetries: 1,
				BackOffBase: time.Millisecond, RetriableHeaders: []resource.HeaderMatcher{{Name: "x-retry", Present: true}}}
		})
		mu.Lock()
		clear(seen)
		mu.Unlock()
		req, _ := http.NewRequest(http.MethodGet, h.url+tc.path, nil)
		req.Host = "svc:9080"
		resp, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		mu.Lock()
		n := seen[tc.path]
		mu.Unlock()
		// One answer went downstream; a retriable-headers policy matches on the answer's
		// map, which it builds first.
		if d, wantD := answered.take(), tc.retryOn == "cancelled"; len(d) != 1 || d[0].deferred != wantD {
			t.Errorf("retry on %s, %s: answers sent downstream %+v, want one, its map left to be built %v", tc.retryOn, tc.path, d, wantD)
		}
		wantN := map[bool]int{true: 2, false: 1}[tc.want == "ok"]
		if string(body) != tc.want || n != wantN {
			t.Errorf("retry on %s, %s: body %q after %d upstream requests, want %q after %d", tc.retryOn, tc.path, body, n, tc.want, wantN)
		}
	}
}

// answerLog records how each answer went downstream (forward.OnAnswer).
type answerLog struct {
	mu   sync.Mutex
	seen []answerSeen
}

type answerSeen struct{ deferred, adopted bool }

func recordAnswers(t *testing.T) *answerLog {
	t.Helper()
	l := new(answerLog)
	t.Cleanup(forward.OnAnswer(func(deferred, adopted bool) {
		l.mu.Lock()
		l.seen = append(l.seen, answerSeen{deferred, adopted})
		l.mu.Unlock()
	}))
	return l
}

// take returns the answers recorded since the last take, and forgets them.
func (l *answerLog) take() []answerSeen {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.seen
	l.seen = nil
	return s
}

// last is the latest answer's record, the others forgotten; none fails the test.
func (l *answerLog) last(t *testing.T) answerSeen {
	t.Helper()
	s := l.take()
	if len(s) == 0 {
		t.Fatal("no answer was sent downstream")
	}
	return s[len(s)-1]
}
