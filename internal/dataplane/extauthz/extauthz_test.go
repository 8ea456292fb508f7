package extauthz

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lucid-mesh/lucid/internal/dataplane/rbac"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// seen is what the authorization server received.
type seen struct {
	method, path, host string
	header             http.Header
	body               string
}

type server struct {
	addr string
	mu   sync.Mutex
	last seen
	// reply answers a check.
	reply func(w http.ResponseWriter, r *http.Request)
}

func startServer(t *testing.T, reply func(w http.ResponseWriter, r *http.Request)) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.181.40:0")
	if err != nil {
		t.Skipf("listen: %v", err)
	}
	s := &server{addr: ln.Addr().String(), reply: reply}
	srv := &http.Server{ReadHeaderTimeout: time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.last = seen{method: r.Method, path: r.URL.RequestURI(), host: r.Host, header: r.Header.Clone(), body: string(b)}
		s.mu.Unlock()
		s.reply(w, r)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

func exactMatcher(s string) resource.StringMatcher {
	return resource.StringMatcher{Kind: resource.MatchExact, Value: s, IgnoreCase: true}
}

func newClient(t *testing.T, cfg *resource.ExtAuthz, addr string) *Client {
	t.Helper()
	tr := &http.Transport{Proxy: nil}
	t.Cleanup(tr.CloseIdleConnections)
	if cfg.Cluster == "" {
		cfg.Cluster = "outbound|8000||ext-authz.foo.svc.cluster.local"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = time.Second
	}
	if cfg.StatusOnError == 0 {
		cfg.StatusOnError = 403
	}
	return New(cfg, Options{Transport: tr, Resolve: func(string) (string, error) { return addr, nil }})
}

func incoming() *http.Request {
	r, _ := http.NewRequest(http.MethodPost, "http://httpbin.foo:8000/headers?x=1", nil)
	r.Header.Set("Authorization", "Bearer t")
	r.Header.Set("X-Allowed", "yes")
	r.Header.Set("X-Other", "no")
	r.Header.Set("Cookie", "c=1")
	return r
}

func TestAllowed(t *testing.T) {
	s := startServer(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-User", "alice")
		w.Header().Set("X-Secret", "s")
		w.Header().Set("Set-Cookie", "a=b")
		w.Header().Set("X-Envoy-Auth-Headers-To-Remove", "cookie, x-other")
	})
	c := newClient(t, &resource.ExtAuthz{
		PathPrefix:                    "/check",
		AllowedHeaders:                []resource.StringMatcher{exactMatcher("x-allowed")},
		HeadersToAdd:                  []resource.HeaderValueOption{{Key: "x-from-mesh", Value: "1"}},
		AllowedUpstreamHeaders:        []resource.StringMatcher{exactMatcher("x-user")},
		AllowedClientHeadersOnSuccess: []resource.StringMatcher{exactMatcher("set-cookie")},
		WithRequestBody:               true, MaxRequestBytes: 4,
	}, s.addr)
	res := c.Check(context.Background(), incoming(), "/headers?x=1", []byte("hello"))
	if !res.Continue() || res.Status != OK {
		t.Fatalf("status %v err %v", res.Status, res.Err)
	}
	got := s.last
	if got.method != http.MethodPost || got.path != "/check/headers?x=1" || got.host != "httpbin.foo:8000" {
		t.Errorf("check request %s %s host %s", got.method, got.path, got.host)
	}
	if got.header.Get("Authorization") != "Bearer t" || got.header.Get("X-Allowed") != "yes" || got.header.Get("X-Other") != "" || got.header.Get("X-From-Mesh") != "1" {
		t.Errorf("check headers %v", got.header)
	}
	if got.body != "hell" {
		t.Errorf("body %q, want the first max_request_bytes", got.body)
	}
	if res.UpstreamHeaders.Get("X-User") != "alice" || res.UpstreamHeaders.Get("X-Secret") != "" {
		t.Errorf("upstream headers %v", res.UpstreamHeaders)
	}
	if res.Headers.Get("Set-Cookie") != "a=b" || len(res.Headers) != 1 {
		t.Errorf("client headers on success %v", res.Headers)
	}
	if strings.Join(res.RemoveHeaders, ",") != "cookie,x-other" {
		t.Errorf("headers to remove %v", res.RemoveHeaders)
	}
}

func TestDenied(t *testing.T) {
	s := startServer(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Reason", "nope")
		w.Header().Set("Www-Authenticate", "Basic")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, "go away")
	})
	c := newClient(t, &resource.ExtAuthz{}, s.addr)
	res := c.Check(context.Background(), incoming(), "/headers", nil)
	if res.Continue() || res.Status != Denied || res.Code != 401 || string(res.Body) != "go away" || res.Details() != DetailsDenied {
		t.Fatalf("status %v code %d body %q details %s", res.Status, res.Code, res.Body, res.Details())
	}
	if res.Headers.Get("X-Reason") != "nope" {
		t.Errorf("no allowed_client_headers: every header but Host goes to the client; got %v", res.Headers)
	}
	c = newClient(t, &resource.ExtAuthz{AllowedClientHeaders: []resource.StringMatcher{exactMatcher("x-none")}}, s.addr)
	res = c.Check(context.Background(), incoming(), "/headers", nil)
	if res.Headers.Get("X-Reason") != "" || res.Headers.Get("Www-Authenticate") != "Basic" {
		t.Errorf("allowed_client_headers plus Envoy's always-sent ones: got %v", res.Headers)
	}
}

func TestErrors(t *testing.T) {
	s := startServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(300 * time.Millisecond)
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	for _, tc := range []struct {
		name      string
		addr      string
		path      string
		cfg       resource.ExtAuthz
		code      int
		continues bool
	}{
		{"5xx is an error", s.addr, "/", resource.ExtAuthz{}, 403, false},
		{"status_on_error", s.addr, "/", resource.ExtAuthz{StatusOnError: 503}, 503, false},
		{"unreachable", "127.0.181.41:1", "/", resource.ExtAuthz{}, 403, false},
		{"timeout", s.addr, "/slow", resource.ExtAuthz{Timeout: 50 * time.Millisecond}, 403, false},
		{"failure_mode_allow", "127.0.181.41:1", "/", resource.ExtAuthz{FailureModeAllow: true}, 403, true},
		{"gRPC is not supported", s.addr, "/", resource.ExtAuthz{GRPC: true}, 403, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			c := newClient(t, &cfg, tc.addr)
			res := c.Check(context.Background(), incoming(), tc.path, nil)
			if res.Status != Error || res.Code != tc.code || res.Continue() != tc.continues || res.Details() != DetailsError || res.Err == nil {
				t.Errorf("status %v code %d continue %v details %s err %v", res.Status, res.Code, res.Continue(), res.Details(), res.Err)
			}
		})
	}
}

func TestFilterEnabledMetadata(t *testing.T) {
	c := New(&resource.ExtAuthz{FilterEnabledMetadata: &resource.MetadataMatcher{
		Filter: "envoy.filters.http.rbac", Path: []string{"istio_ext_authz_shadow_effective_policy_id"},
		Value: resource.ValueMatcher{Kind: resource.ValueString, String: resource.StringMatcher{Kind: resource.MatchPrefix, Value: "istio-ext-authz-my"}},
	}}, Options{})
	var md rbac.Metadata
	if c.Enabled(md) {
		t.Error("enabled without the CUSTOM policy's match")
	}
	md.Set("envoy.filters.http.rbac", "istio_ext_authz_shadow_effective_policy_id", "istio-ext-authz-my-ns[foo]-policy[p]-rule[0]")
	if !c.Enabled(md) {
		t.Error("not enabled with the CUSTOM policy's match")
	}
}
