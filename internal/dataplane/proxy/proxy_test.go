package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lucid-mesh/lucid/internal/dataplane/cluster"
	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/pool"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// backend starts a loopback HTTP server answering with name.
func backend(t *testing.T, addr, name string) {
	t.Helper()
	testutil.Backend(t, addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, name+" "+r.URL.Path)
	}))
}

func newProxy(t *testing.T, ip string) *Proxy {
	t.Helper()
	cm := cluster.NewManager(nil)
	ps := pool.NewSet(nil)
	fw := forward.New(forward.Options{Clusters: cm, Pools: ps})
	p := New(Options{IP: netip.MustParseAddr(ip), Forwarder: fw, Clusters: cm, Pools: ps, DrainTimeout: time.Second})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Close(ctx)
		fw.Close()
		ps.Close()
	})
	return p
}

func staticCluster(name, addr string) *resource.Cluster {
	ap := netip.MustParseAddrPort(addr)
	return &resource.Cluster{Name: name, Type: resource.Static, ConnectTimeout: time.Second,
		LoadAssignment: &resource.Endpoints{ClusterName: name, Endpoints: []resource.Endpoint{{Address: ap, Port: uint32(ap.Port()), Weight: 1}}}}
}

func routeTo(name, cluster string) *resource.RouteConfig {
	return &resource.RouteConfig{Name: name, VirtualHosts: []resource.VirtualHost{{
		Name: name, Domains: []string{"*"},
		Routes: []resource.Route{{Name: "default", Match: resource.RouteMatch{Path: "/", CaseSensitive: true}, Action: &resource.RouteAction{Cluster: cluster}}},
	}}}
}

// snapshot: virtualOutbound on ip:15001 (passthrough), 0.0.0.0_9080 → RDS "9080" → svc,
// virtualInbound with port inPort → inbound cluster.
func snapshot(ip string, inPort uint32, svc, app string) *resource.Snapshot {
	a := netip.MustParseAddr(ip)
	return &resource.Snapshot{
		Listeners: map[string]*resource.Listener{
			"virtualOutbound": {Name: "virtualOutbound", Address: netip.AddrPortFrom(a, 15001), BindToPort: true, UseOriginalDst: true, Direction: resource.Outbound,
				DefaultChain: &resource.FilterChain{TCP: &resource.TCPProxy{Cluster: "PassthroughCluster"}}},
			"0.0.0.0_9080": {Name: "0.0.0.0_9080", Address: netip.MustParseAddrPort("0.0.0.0:9080"), Direction: resource.Outbound,
				FilterChains: []resource.FilterChain{{HTTP: &resource.HTTPManager{RDSName: "9080"}}}},
			"virtualInbound": {Name: "virtualInbound", Address: netip.AddrPortFrom(a, 15006), BindToPort: true, UseOriginalDst: true, Direction: resource.Inbound,
				FilterChains: []resource.FilterChain{{Match: resource.FilterChainMatch{DestinationPort: inPort},
					HTTP: &resource.HTTPManager{Routes: routeTo("inbound|9080||", "inbound|9080||")}}}},
		},
		Routes: map[string]*resource.RouteConfig{"9080": routeTo("9080", "svc")},
		Clusters: map[string]*resource.Cluster{
			"svc":                {Name: "svc", Type: resource.Static, ConnectTimeout: time.Second, LoadAssignment: staticCluster("svc", svc).LoadAssignment},
			"inbound|9080||":     staticCluster("inbound|9080||", app),
			"PassthroughCluster": {Name: "PassthroughCluster", Type: resource.OriginalDst, ConnectTimeout: time.Second, UseHTTPHeader: true},
		},
		Endpoints: map[string]*resource.Endpoints{},
	}
}

func proxied(t *testing.T, via, url string) (int, string) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{Proxy: func(*http.Request) (*neturl, error) { return parseURL("http://" + via) }}, Timeout: 5 * time.Second}
	defer c.CloseIdleConnections()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s via %s: %v", url, via, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestApplyBindsAndRoutes(t *testing.T) {
	backend(t, "127.0.51.2:9080", "svc")
	backend(t, "127.0.51.3:9080", "app")
	backend(t, "127.0.51.4:9090", "other")
	p := newProxy(t, "127.0.51.1")
	if err := p.Apply(snapshot("127.0.51.1", 9080, "127.0.51.2:9080", "127.0.51.3:9080")); err != nil {
		t.Fatal(err)
	}
	if !p.Applied() || len(p.Missing()) != 0 {
		t.Fatalf("applied=%v missing=%v", p.Applied(), p.Missing())
	}
	// Explicit proxy → 0.0.0.0_9080 → RDS 9080 → svc.
	if code, body := proxied(t, "127.0.51.1:15001", "http://anything:9080/x"); code != 200 || body != "svc /x" {
		t.Fatalf("outbound: %d %q", code, body)
	}
	// A port with no listener takes the passthrough chain to the named destination.
	if code, body := proxied(t, "127.0.51.1:15001", "http://127.0.51.4:9090/direct"); code != 200 || body != "other /direct" {
		t.Fatalf("passthrough: %d %q", code, body)
	}
	// Inbound: the virtualInbound chain's port is bound on the workload address.
	resp, err := http.Get("http://127.0.51.1:9080/in")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "app /in" {
		t.Fatalf("inbound: %q", b)
	}
	got := p.Listening()
	if len(got) != 2 || got[0].Address.String() != "127.0.51.1:15001" || got[1].Listener != "virtualInbound" {
		t.Fatalf("listening: %+v", got)
	}
}

func TestApplyBindFailureChangesNothing(t *testing.T) {
	backend(t, "127.0.52.2:9080", "svc")
	backend(t, "127.0.52.3:9080", "app")
	p := newProxy(t, "127.0.52.1")
	if err := p.Apply(snapshot("127.0.52.1", 9080, "127.0.52.2:9080", "127.0.52.3:9080")); err != nil {
		t.Fatal(err)
	}
	// Something else holds the port the next config wants.
	busy, err := net.Listen("tcp", "127.0.52.1:9999")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	next := snapshot("127.0.52.1", 9999, "127.0.52.3:9080", "127.0.52.3:9080")
	err = p.Apply(next)
	if err == nil || !strings.Contains(err.Error(), "127.0.52.1:9999") || !strings.Contains(err.Error(), "virtualInbound") {
		t.Fatalf("Apply = %v, want a bind error naming the listener and address", err)
	}
	// The old config keeps serving, including the old inbound port.
	if code, body := proxied(t, "127.0.52.1:15001", "http://x:9080/"); code != 200 || body != "svc /" {
		t.Fatalf("after failed apply: %d %q", code, body)
	}
	c, err := net.DialTimeout("tcp", "127.0.52.1:9080", time.Second)
	if err != nil {
		t.Fatalf("old inbound port closed after a failed apply: %v", err)
	}
	c.Close()
}

func TestRemovedPortStopsAcceptingAndMissingRDS(t *testing.T) {
	backend(t, "127.0.53.3:9080", "app")
	p := newProxy(t, "127.0.53.1")
	p.opts.RouteWarmTimeout = time.Second // warming.go: a missing RDS answers after this
	s := snapshot("127.0.53.1", 9080, "127.0.53.3:9080", "127.0.53.3:9080")
	if err := p.Apply(s); err != nil {
		t.Fatal(err)
	}
	// Move the inbound port and drop the RDS config: 9080 closes, 9081 opens, and the
	// proxy reports the missing route config until it arrives.
	s2 := snapshot("127.0.53.1", 9081, "127.0.53.3:9080", "127.0.53.3:9080")
	delete(s2.Routes, "9080")
	if err := p.Apply(s2); err != nil {
		t.Fatal(err)
	}
	if m := p.Missing(); len(m) != 1 || m[0] != "route config 9080" {
		t.Fatalf("missing = %v", m)
	}
	testutil.Eventually(t, 2*time.Second, "the removed inbound port refusing connections", func() bool {
		c, err := net.DialTimeout("tcp", "127.0.53.1:9080", 200*time.Millisecond)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	if code, _ := proxied(t, "127.0.53.1:15001", "http://x:9080/"); code != 404 {
		t.Fatalf("request for a route config not received: %d, want 404 NR", code)
	}
	// The warm timeout runs once per route configuration: the next request is answered at
	// once, not after another wait (Envoy's listener goes active after initial_fetch_timeout).
	start := time.Now()
	if code, _ := proxied(t, "127.0.53.1:15001", "http://x:9080/"); code != 404 {
		t.Fatalf("second request for a route config not received: %d, want 404 NR", code)
	}
	if waited := time.Since(start); waited >= p.opts.RouteWarmTimeout {
		t.Errorf("second request waited %v, want no second warm-up wait (%v)", waited, p.opts.RouteWarmTimeout)
	}
	resp, err := http.Get("http://127.0.53.1:9081/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("new inbound port: %d", resp.StatusCode)
	}
}

func TestTCPChain(t *testing.T) {
	// An echo server upstream; the inbound chain for port 7000 is a tcp_proxy.
	ln, err := net.Listen("tcp", "127.0.54.3:7000")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	p := newProxy(t, "127.0.54.1")
	s := &resource.Snapshot{
		Listeners: map[string]*resource.Listener{"virtualInbound": {Name: "virtualInbound", Address: netip.MustParseAddrPort("127.0.54.1:15006"), BindToPort: true, UseOriginalDst: true, Direction: resource.Inbound,
			FilterChains: []resource.FilterChain{{Match: resource.FilterChainMatch{DestinationPort: 7000}, TCP: &resource.TCPProxy{Cluster: "inbound|7000||"}}}}},
		Clusters: map[string]*resource.Cluster{"inbound|7000||": staticCluster("inbound|7000||", "127.0.54.3:7000")},
	}
	if err := p.Apply(s); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", "127.0.54.1:7000")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "hello"); err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	if string(b) != "hello" {
		t.Fatalf("echo through tcp_proxy = %q", b)
	}
}

// A request that arrives between LDS and RDS waits for the route configuration (Envoy's
// listener warming) and is routed once it arrives, instead of getting 404 NR.
func TestRequestWaitsForRouteConfig(t *testing.T) {
	backend(t, "127.0.53.13:9080", "app")
	p := newProxy(t, "127.0.53.11")
	full := snapshot("127.0.53.11", 9080, "127.0.53.13:9080", "127.0.53.13:9080")
	ldsOnly := snapshot("127.0.53.11", 9080, "127.0.53.13:9080", "127.0.53.13:9080")
	ldsOnly.Routes = map[string]*resource.RouteConfig{}
	if err := p.Apply(ldsOnly); err != nil {
		t.Fatal(err)
	}
	got := make(chan int, 1)
	go func() {
		code, _ := proxied(t, "127.0.53.11:15001", "http://x:9080/")
		got <- code
	}()
	select {
	case code := <-got:
		t.Fatalf("answered %d before the route configuration arrived, want it to wait", code)
	case <-time.After(300 * time.Millisecond):
	}
	if err := p.Apply(full); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-got:
		if code != 200 {
			t.Fatalf("after RDS arrived: %d, want 200", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("request still waiting 5 s after the route configuration arrived")
	}
}
