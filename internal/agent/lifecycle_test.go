package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/cluster"
	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/pool"
	"github.com/lucid-mesh/lucid/internal/dataplane/proxy"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

// A sidecar by hand on 127.0.91.20 (virtualOutbound :15001, virtualInbound port 9080)
// in front of an app on 127.0.91.21:9080.
const (
	sidecarIP = "127.0.91.20"
	appAddr   = "127.0.91.21:9080"
)

func handProxy(t *testing.T) (*proxy.Proxy, func()) {
	t.Helper()
	cm := cluster.NewManager(nil)
	ps := pool.NewSet(nil)
	fw := forward.New(forward.Options{Clusters: cm, Pools: ps})
	p := proxy.New(proxy.Options{IP: netip.MustParseAddr(sidecarIP), Forwarder: fw, Clusters: cm, Pools: ps, DrainTimeout: time.Second})
	return p, func() { fw.Close(); ps.Close() }
}

func inboundSnapshot() *resource.Snapshot {
	ip := netip.MustParseAddr(sidecarIP)
	app := netip.MustParseAddrPort(appAddr)
	routes := func(name, cl string) *resource.RouteConfig {
		return &resource.RouteConfig{Name: name, VirtualHosts: []resource.VirtualHost{{Name: name, Domains: []string{"*"},
			Routes: []resource.Route{{Name: "default", Match: resource.RouteMatch{Path: "/", CaseSensitive: true}, Action: &resource.RouteAction{Cluster: cl}}}}}}
	}
	static := func(name string) *resource.Cluster {
		return &resource.Cluster{Name: name, Type: resource.Static, ConnectTimeout: time.Second,
			LoadAssignment: &resource.Endpoints{ClusterName: name, Endpoints: []resource.Endpoint{{Address: app, Port: uint32(app.Port()), Weight: 1}}}}
	}
	return &resource.Snapshot{
		Listeners: map[string]*resource.Listener{
			"virtualOutbound": {Name: "virtualOutbound", Address: netip.AddrPortFrom(ip, 15001), BindToPort: true, UseOriginalDst: true, Direction: resource.Outbound,
				DefaultChain: &resource.FilterChain{TCP: &resource.TCPProxy{Cluster: "BlackHoleCluster"}}},
			"0.0.0.0_9080": {Name: "0.0.0.0_9080", Address: netip.MustParseAddrPort("0.0.0.0:9080"), Direction: resource.Outbound,
				FilterChains: []resource.FilterChain{{HTTP: &resource.HTTPManager{Routes: routes("9080", "outbound|9080||app")}}}},
			"virtualInbound": {Name: "virtualInbound", Address: netip.AddrPortFrom(ip, 15006), BindToPort: true, UseOriginalDst: true, Direction: resource.Inbound,
				FilterChains: []resource.FilterChain{{Match: resource.FilterChainMatch{DestinationPort: 9080},
					HTTP: &resource.HTTPManager{Routes: routes("inbound|9080||", "inbound|9080||")}}}},
		},
		Clusters:  map[string]*resource.Cluster{"inbound|9080||": static("inbound|9080||"), "outbound|9080||app": static("outbound|9080||app")},
		Endpoints: map[string]*resource.Endpoints{},
	}
}

// slowApp answers after hold, so that requests are in flight when the drain starts.
func slowApp(t *testing.T, hold time.Duration) {
	t.Helper()
	ln, err := net.Listen("tcp", appAddr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(hold)
		_, _ = io.WriteString(w, "app")
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
}

type result struct {
	beforeStop bool
	err        error
	status     int
	closeHdr   bool
	proto      string
}

// TestDrainUnderLoad: concurrent HTTP/1.1 and HTTP/2 clients into the inbound port; the
// agent is told to stop (SIGTERM = ctx cancel). No request that started before fails;
// readiness fails at once; new inbound connections are still accepted during the drain
// (Envoy's graceful drain) and refused after exit; outbound keeps working until exit;
// HTTP/1.1 responses during the drain carry Connection: close.
func TestDrainUnderLoad(t *testing.T) {
	slowApp(t, 30*time.Millisecond)
	px, cleanup := handProxy(t)
	defer cleanup()
	apl := &applier{proxy: px, static: newStatic(netip.MustParseAddr(sidecarIP), 15020, 15021)}
	if err := apl.Apply(inboundSnapshot()); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	var draining atomic.Bool
	o := Options{DrainDuration: 700 * time.Millisecond}
	lc := lifecycle{o: o, log: slog.New(slog.NewTextHandler(&logs, nil)), proxy: px, applier: apl, draining: &draining,
		quit: make(chan struct{}), drainReq: make(chan struct{})}
	ctx, sigterm := context.WithCancel(context.Background())
	exited := make(chan struct{})
	go func() { lc.run(ctx); close(exited) }()

	var stopped atomic.Bool // set just before SIGTERM
	var mu sync.Mutex
	var results []result
	var ok atomic.Int64
	var wg sync.WaitGroup
	client := func(h2 bool) {
		defer wg.Done()
		tr := &http.Transport{}
		if h2 {
			tr.Protocols = new(http.Protocols)
			tr.Protocols.SetUnencryptedHTTP2(true)
		}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
		for {
			select {
			case <-exited:
				return
			default:
			}
			// "Before SIGTERM" means on the wire before it: a request whose idle keep-alive
			// connection the drain closed first is re-dialled by the client and may be refused,
			// as with Envoy.
			var wrote atomic.Bool
			trace := &httptrace.ClientTrace{WroteHeaders: func() { wrote.Store(!stopped.Load()) }}
			req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, "http://"+sidecarIP+":9080/work", nil)
			resp, err := c.Do(req)
			before := wrote.Load()
			r := result{beforeStop: before, err: err}
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				r.err, r.status, r.closeHdr, r.proto = err, resp.StatusCode, resp.Close, resp.Proto
				if err == nil && resp.StatusCode == 200 {
					ok.Add(1)
				}
			}
			mu.Lock()
			results = append(results, r)
			mu.Unlock()
			if !before && (err != nil) {
				return // the listener is gone: this client is done
			}
		}
	}
	for i := range 16 {
		wg.Add(1)
		go client(i%4 == 0)
	}
	testutil.EventuallyWhy(t, 10*time.Second, "the load started (200 successes)", func() (bool, string) {
		n := ok.Load()
		return n >= 200, fmt.Sprintf("%d successes", n)
	})
	stopped.Store(true)
	sigterm()

	// Readiness fails at once (the flag is set before the listeners are touched).
	testutil.Eventually(t, 5*time.Second, "draining", draining.Load)
	// A new inbound connection during the drain is served and told to close: callers
	// still route here until the endpoint's removal reaches them.
	nc := &http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Second}
	late, err := nc.Get("http://" + sidecarIP + ":9080/late")
	if err != nil {
		t.Fatalf("new inbound connection during the drain: %v", err)
	}
	_ = late.Body.Close()
	if late.StatusCode != 200 || !late.Close {
		t.Fatalf("new inbound connection during the drain: %d, Connection: close %v", late.StatusCode, late.Close)
	}
	// Outbound keeps working during the drain, so the app can finish its own work.
	pu, _ := url.Parse("http://" + sidecarIP + ":15001")
	oc := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}, Timeout: 5 * time.Second}
	resp, err := oc.Get("http://app:9080/outbound")
	if err != nil {
		t.Fatalf("outbound during drain: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("outbound during drain: %d", resp.StatusCode)
	}
	oc.CloseIdleConnections()
	select {
	case <-exited:
		t.Fatal("exited before the drain duration")
	default:
	}
	<-exited
	wg.Wait()

	var before, failedBefore, closeHdrs int
	for _, r := range results {
		if r.beforeStop {
			before++
			if r.err != nil || r.status != 200 {
				failedBefore++
				t.Errorf("request started before SIGTERM failed: status %d, %v", r.status, r.err)
			}
		}
		if r.closeHdr && r.proto == "HTTP/1.1" {
			closeHdrs++
		}
	}
	if before < 200 || closeHdrs == 0 {
		t.Fatalf("%d requests before SIGTERM; %d HTTP/1.1 responses with Connection: close during the drain", before, closeHdrs)
	}
	// After exit, inbound and outbound are closed.
	for _, port := range []string{"9080", "15001"} {
		if c, err := net.DialTimeout("tcp", sidecarIP+":"+port, time.Second); err == nil {
			_ = c.Close()
			t.Fatalf("port %s still open after exit", port)
		}
	}
}

func startLifecycle(t *testing.T, o Options) (lc lifecycle, sigterm func(), quit chan struct{}, drain chan struct{}, exited chan struct{}) {
	t.Helper()
	// The previous test's proxy keeps its drained sockets accepting until its drain period
	// ends (as Envoy does); this one binds the same addresses.
	testutil.Eventually(t, 10*time.Second, "the previous test's sockets closed", func() bool {
		return !dialable(sidecarIP+":9080") && !dialable(sidecarIP+":15001")
	})
	px, cleanup := handProxy(t)
	t.Cleanup(cleanup)
	apl := &applier{proxy: px, static: newStatic(netip.MustParseAddr(sidecarIP), 15020, 15021)}
	if err := apl.Apply(inboundSnapshot()); err != nil {
		t.Fatal(err)
	}
	quit, drain, exited = make(chan struct{}), make(chan struct{}, 1), make(chan struct{})
	lc = lifecycle{o: o, log: slog.New(slog.DiscardHandler), proxy: px, applier: apl, draining: new(atomic.Bool), quit: quit, drainReq: drain}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { lc.run(ctx); close(exited) }()
	t.Cleanup(func() { cancel(); <-exited })
	return lc, cancel, quit, drain, exited
}

func dialable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		_ = c.Close()
	}
	return err == nil
}

// EXIT_ON_ZERO_ACTIVE_CONNECTIONS: with no inbound connection the sidecar exits after the
// minimum drain duration, long before the drain duration.
func TestExitOnZeroActiveConnections(t *testing.T) {
	o := Options{DrainDuration: time.Hour, AgentOptions: AgentOptions{ExitOnZeroActiveConnections: true, MinimumDrainDuration: 20 * time.Millisecond}}
	_, sigterm, _, _, exited := startLifecycle(t, o)
	sigterm()
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		t.Fatal("did not exit at zero active connections")
	}
}

// Without it, the whole drain duration passes even with no connection (Istio's default),
// and /quitquitquit cuts it short.
func TestDrainDurationThenQuit(t *testing.T) {
	o := Options{DrainDuration: time.Hour}
	lc, sigterm, quit, _, exited := startLifecycle(t, o)
	sigterm()
	testutil.Eventually(t, 5*time.Second, "draining", lc.draining.Load)
	if !dialable(sidecarIP + ":9080") {
		t.Fatal("inbound refused at the start of the drain; it accepts until the drain period ends")
	}
	testutil.Eventually(t, 5*time.Second, "inbound closed at the end of the proxy's drain period", func() bool { return !dialable(sidecarIP + ":9080") })
	if !dialable(sidecarIP + ":15001") {
		t.Fatal("outbound closed during the drain")
	}
	select {
	case <-exited:
		t.Fatal("exited before the drain duration")
	default:
	}
	close(quit)
	<-exited
}

// /drain drains inbound without exiting; SIGTERM then exits at once.
func TestDrainEndpoint(t *testing.T) {
	o := Options{DrainDuration: time.Hour}
	lc, sigterm, _, drain, exited := startLifecycle(t, o)
	drain <- struct{}{}
	testutil.Eventually(t, 5*time.Second, "draining", lc.draining.Load)
	testutil.Eventually(t, 5*time.Second, "inbound closed", func() bool { return !dialable(sidecarIP + ":9080") })
	// A config push during the drain does not bind inbound again.
	if err := lc.applier.Apply(inboundSnapshot()); err != nil {
		t.Fatal(err)
	}
	if dialable(sidecarIP+":9080") || !dialable(sidecarIP+":15001") || !dialable(sidecarIP+":15021") {
		t.Fatal("after /drain and a push: inbound must stay closed, outbound and 15021 open")
	}
	select {
	case <-exited:
		t.Fatal("/drain exited")
	default:
	}
	sigterm()
	<-exited
}
