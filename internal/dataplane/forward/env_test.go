package forward_test

import (
	"bufio"
	"cmp"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lucid-mesh/lucid/internal/dataplane/cluster"
	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/pool"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/route"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is a proxy (Forwarder behind a loopback HTTP/1.1 + h2c server) with its clusters.
type env struct {
	t         testing.TB
	routes    *route.Table // nil: the route configuration has not arrived
	clusters  map[string]*resource.Cluster
	cm        *cluster.Manager
	ps        *pool.Set
	fwd       *forward.Forwarder
	url       string // http://127.0.0.1:port
	infos     chan *streaminfo.Info
	h1, h2c   *http.Client
	routeName string
	hcm       *resource.HTTPManager // nil: a plain outbound connection manager
	direction string                // "": outbound
}

func newEnv(t testing.TB, rc *resource.RouteConfig, clusters ...*resource.Cluster) *env {
	t.Helper()
	return newEnvWith(t, nil, rc, clusters...)
}

// newEnvWith is newEnv with the Forwarder's options changed by opt (nil: none).
func newEnvWith(t testing.TB, opt func(*forward.Options), rc *resource.RouteConfig, clusters ...*resource.Cluster) *env {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	e := &env{
		t: t, clusters: map[string]*resource.Cluster{},
		cm: cluster.NewManager(log), ps: pool.NewSet(log),
		infos: make(chan *streaminfo.Info, 10000), routeName: "9080",
	}
	if rc != nil {
		e.routes = route.Compile(rc) // as the proxy indexes each configuration it applies
	}
	for _, c := range clusters {
		e.clusters[c.Name] = c
	}
	e.apply()
	o := forward.Options{
		Clusters: e.cm, Pools: e.ps, Logger: log,
		Observers: []func(*streaminfo.Info){func(i *streaminfo.Info) {
			cp := *i
			select {
			case e.infos <- &cp:
			default: // benchmarks do not read them
			}
		}},
	}
	if opt != nil {
		opt(&o)
	}
	e.fwd = forward.New(o)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(e.serve), ReadHeaderTimeout: 5 * time.Second}
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	go func() { _ = srv.Serve(ln) }()
	e.url = "http://" + ln.Addr().String()

	e.h1 = &http.Client{Transport: &http.Transport{DisableCompression: true}}
	h2 := &http.Transport{DisableCompression: true, Protocols: new(http.Protocols)}
	h2.Protocols.SetUnencryptedHTTP2(true)
	e.h2c = &http.Client{Transport: h2}
	t.Cleanup(func() {
		e.h1.CloseIdleConnections()
		e.h2c.CloseIdleConnections()
		_ = srv.Close()
		e.fwd.Close()
		e.ps.Close()
	})
	return e
}

func (e *env) apply() {
	e.cm.Update(e.clusters, nil)
	e.ps.Update(e.clusters)
}

func (e *env) serve(w http.ResponseWriter, r *http.Request) {
	remote, _ := netip.ParseAddrPort(r.RemoteAddr)
	e.fwd.Serve(w, r, forward.Inbound{
		Routes:          e.routes,
		RouteConfigName: e.routeName,
		HTTP:            cmp.Or(e.hcm, &resource.HTTPManager{ServerName: "istio-envoy", FaultFilter: true}),
		Listener:        "0.0.0.0_9080",
		Direction:       cmp.Or(e.direction, "outbound"),
		RemoteAddr:      remote,
	})
}

// info returns the record of the next finished request.
func (e *env) info() *streaminfo.Info {
	e.t.Helper()
	select {
	case i := <-e.infos:
		return i
	case <-time.After(5 * time.Second):
		e.t.Fatal("no request finished")
		return nil
	}
}

// result is what a client saw.
type result struct {
	code int
	body string
	hdr  http.Header
	trl  http.Header
}

func (e *env) do(c *http.Client, req *http.Request) result {
	e.t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("reading body: %v", err)
	}
	return result{code: resp.StatusCode, body: string(b), hdr: resp.Header, trl: resp.Trailer}
}

func (e *env) get(path string) result {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.url+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Host = "svc:9080"
	return e.do(e.h1, req)
}

// backend starts a loopback upstream (HTTP/1.1 and h2c).
func backend(t testing.TB, h http.HandlerFunc) string {
	t.Helper()
	return testutil.Backend(t, "127.0.0.1:0", h)
}

// rawBackend is an upstream that misbehaves: serve runs for each connection (n from 0).
func rawBackend(t testing.TB, serve func(c net.Conn, br *bufio.Reader, n int)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 0; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serve(c, bufio.NewReader(c), n)
			}()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// refusedAddr is a loopback address nothing listens on.
func refusedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func static(name string, addrs ...string) *resource.Cluster {
	c := &resource.Cluster{Name: name, Type: resource.Static, ConnectTimeout: time.Second,
		IdleTimeout: time.Hour, LoadAssignment: &resource.Endpoints{ClusterName: name}}
	for _, a := range addrs {
		ap := netip.MustParseAddrPort(a)
		c.LoadAssignment.Endpoints = append(c.LoadAssignment.Endpoints, resource.Endpoint{
			Address: ap, Port: uint32(ap.Port()), Weight: 1,
			Workload: "reviews-v1;default;reviews;v1;Kubernetes",
			Labels:   map[string]string{"app": "reviews", "version": "v1"},
		})
	}
	return c
}

// routes builds a route config with one catch-all virtual host.
func routes(rs ...resource.Route) *resource.RouteConfig {
	return &resource.RouteConfig{Name: "9080", VirtualHosts: []resource.VirtualHost{{
		Name: "svc:9080", Domains: []string{"*"}, Routes: rs, IncludeAttemptCount: true,
	}}}
}

func toCluster(name string) resource.Route {
	return resource.Route{Name: "r", Match: resource.RouteMatch{PathKind: resource.PathPrefix, Path: "/"},
		Action: &resource.RouteAction{Cluster: name}}
}

// istioDefaultRetry is Istio's default outbound retry policy.
func istioDefaultRetry() *resource.RetryPolicy {
	return &resource.RetryPolicy{
		RetryOn:    strings.Split("connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes", ","),
		NumRetries: 2, AvoidPreviousHosts: true, HostSelectionRetryMaxAttempts: 5,
	}
}
