package xdsclient

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	discoverypb "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

const testNode = "sidecar~127.0.10.2~reviews-v1.default~default.svc.cluster.local"

// controlPlane is a go-control-plane ADS server on loopback that records every request.
type controlPlane struct {
	addr   string
	cache  cachev3.SnapshotCache
	srv    *grpc.Server
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	reqs   []*discoverypb.DiscoveryRequest
	deltas []*discoverypb.DeltaDiscoveryRequest
}

// sotwOnly is an ADS server without the delta protocol.
type sotwOnly struct {
	discoverypb.UnimplementedAggregatedDiscoveryServiceServer
	srv serverv3.Server
}

func (s sotwOnly) StreamAggregatedResources(st discoverypb.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	return s.srv.StreamAggregatedResources(st)
}

func startControlPlane(t *testing.T, addr string) *controlPlane {
	t.Helper()
	return startControlPlaneWith(t, addr, false)
}

// startControlPlaneWith starts a control plane that offers the delta protocol unless
// sotw is set.
func startControlPlaneWith(t *testing.T, addr string, sotw bool) *controlPlane {
	t.Helper()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cp := &controlPlane{
		addr:   lis.Addr().String(),
		cache:  cachev3.NewSnapshotCache(true, cachev3.IDHash{}, nil),
		cancel: cancel,
		done:   make(chan struct{}),
	}
	cb := serverv3.CallbackFuncs{StreamRequestFunc: func(_ int64, r *discoverypb.DiscoveryRequest) error {
		cp.mu.Lock()
		cp.reqs = append(cp.reqs, r)
		cp.mu.Unlock()
		return nil
	}, StreamDeltaRequestFunc: func(_ int64, r *discoverypb.DeltaDiscoveryRequest) error {
		cp.mu.Lock()
		cp.deltas = append(cp.deltas, r)
		cp.mu.Unlock()
		return nil
	}}
	cp.srv = grpc.NewServer(grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}))
	xds := serverv3.NewServer(ctx, cp.cache, cb)
	if sotw {
		discoverypb.RegisterAggregatedDiscoveryServiceServer(cp.srv, sotwOnly{srv: xds})
	} else {
		discoverypb.RegisterAggregatedDiscoveryServiceServer(cp.srv, xds)
	}
	go func() {
		defer close(cp.done)
		_ = cp.srv.Serve(lis)
	}()
	t.Cleanup(cp.stop)
	return cp
}

func (cp *controlPlane) stop() {
	cp.cancel()
	cp.srv.Stop()
	<-cp.done
}

func (cp *controlPlane) set(t *testing.T, version string, res map[resourcev3.Type][]types.Resource) {
	t.Helper()
	snap, err := cachev3.NewSnapshot(version, res)
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.cache.SetSnapshot(context.Background(), testNode, snap); err != nil {
		t.Fatal(err)
	}
}

// requests returns the recorded requests of typeURL.
func (cp *controlPlane) requests(typeURL string) []*discoverypb.DiscoveryRequest {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	var out []*discoverypb.DiscoveryRequest
	for _, r := range cp.reqs {
		if r.GetTypeUrl() == typeURL {
			out = append(out, r)
		}
	}
	return out
}

// acked reports whether the server saw an ACK of version for typeURL.
func (cp *controlPlane) acked(typeURL, version string) bool {
	for _, r := range cp.requests(typeURL) {
		if r.GetVersionInfo() == version && r.GetErrorDetail() == nil && r.GetResponseNonce() != "" {
			return true
		}
	}
	return false
}

// nack returns the first NACK for typeURL, or nil.
func (cp *controlPlane) nack(typeURL string) *discoverypb.DiscoveryRequest {
	for _, r := range cp.requests(typeURL) {
		if r.GetErrorDetail() != nil {
			return r
		}
	}
	return nil
}

// recorder is an Applier that keeps every snapshot and can be told to fail.
type recorder struct {
	mu    sync.Mutex
	snaps []*resource.Snapshot
	fail  func(*resource.Snapshot) error
}

func (r *recorder) Apply(s *resource.Snapshot) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		if err := r.fail(s); err != nil {
			return err
		}
	}
	r.snaps = append(r.snaps, s)
	return nil
}

func (r *recorder) last() *resource.Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.snaps) == 0 {
		return nil
	}
	return r.snaps[len(r.snaps)-1]
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.snaps)
}

func startClient(t *testing.T, addr string, app Applier) *Client {
	t.Helper()
	return startClientWith(t, addr, app, ProtocolSotW) // these tests read the SotW requests; delta_test.go covers delta
}

func startClientWith(t *testing.T, addr string, app Applier, protocol string) *Client {
	t.Helper()
	c := New(Options{
		Server: addr, NodeID: testNode, Cluster: "Kubernetes",
		Metadata:    map[string]string{"NAMESPACE": "default"},
		Applier:     app,
		Logger:      slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		BackoffBase: 10 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
		Protocol: protocol,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return c
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func fullConfig(t *testing.T, routeRegex string, ips ...string) map[resourcev3.Type][]types.Resource {
	t.Helper()
	return map[resourcev3.Type][]types.Resource{
		resourcev3.ListenerType: {fxListenerProto(t)},
		resourcev3.RouteType:    {fxRouteProto(routeRegex)},
		resourcev3.ClusterType:  {fxClusterProto()},
		resourcev3.EndpointType: {fxEndpointsProto(ips...)},
	}
}

func complete(s *resource.Snapshot) bool {
	return s != nil && len(s.Listeners) == 1 && len(s.Routes) == 1 && len(s.Clusters) == 1 && len(s.Endpoints) == 1
}

func TestHappyPath(t *testing.T) {
	cp := startControlPlane(t, "127.0.0.1:0")
	cp.set(t, "1", fullConfig(t, "", "127.0.0.11", "127.0.0.12"))
	rec := &recorder{}
	c := startClient(t, cp.addr, rec)

	testutil.Eventually(t, 10*time.Second, "a complete snapshot", func() bool { return complete(rec.last()) })
	testutil.Eventually(t, 10*time.Second, "ACKs of all four types", func() bool {
		return cp.acked(ListenerType, "1") && cp.acked(RouteType, "1") && cp.acked(ClusterType, "1") && cp.acked(EndpointType, "1")
	})
	s := rec.last()
	l := s.Listeners[fxListener]
	if l.BindToPort || l.Address.String() != "0.0.0.0:9080" || l.Direction != resource.Outbound {
		t.Errorf("listener = %+v", l)
	}
	if h := l.FilterChains[0].HTTP; h == nil || h.RDSName != fxRoute || h.StreamIdleTimeout != 0 || h.IdleTimeout != time.Hour {
		t.Errorf("hcm = %+v", l.FilterChains[0].HTTP)
	}
	rt := s.Routes[fxRoute].VirtualHosts[0].Routes[0]
	if rt.Action.Cluster != fxCluster || rt.Action.Timeout != 0 || rt.Action.ClusterNotFoundCode != 503 {
		t.Errorf("route action = %+v", rt.Action)
	}
	cl := s.Clusters[fxCluster]
	if cl.Type != resource.EDS || cl.ServiceName != fxCluster || cl.ConnectTimeout != 10*time.Second {
		t.Errorf("cluster = %+v", cl)
	}
	eps := s.Endpoints[fxCluster].Endpoints
	if len(eps) != 2 || eps[0].Address.String() != "127.0.0.11:9080" || eps[1].Labels["version"] != "v1" || eps[0].Health != resource.Healthy || eps[0].Weight != 1 {
		t.Errorf("endpoints = %+v", eps)
	}
	for _, url := range []string{ListenerType, RouteType, ClusterType, EndpointType} {
		if s.Versions[url] != "1" {
			t.Errorf("Versions[%s] = %q, want 1", url, s.Versions[url])
		}
	}
	// RDS and EDS are subscribed by name.
	rds := cp.requests(RouteType)
	if got := rds[0].GetResourceNames(); len(got) != 1 || got[0] != fxRoute {
		t.Errorf("RDS names = %v", got)
	}
	eds := cp.requests(EndpointType)
	if got := eds[0].GetResourceNames(); len(got) != 1 || got[0] != fxCluster {
		t.Errorf("EDS names = %v", got)
	}
	st := c.Status()
	if !st.Connected || !st.Types["LDS"].Received || st.Types["RDS"].Version != "1" || st.Types["EDS"].NackReason != "" {
		t.Errorf("status = %+v", st)
	}

	// An update replaces the endpoints.
	cp.set(t, "2", fullConfig(t, "", "127.0.0.13"))
	testutil.Eventually(t, 10*time.Second, "version 2 endpoints", func() bool {
		s := rec.last()
		return s.Versions[EndpointType] == "2" && len(s.Endpoints[fxCluster].Endpoints) == 1
	})
}

func TestNACKInvalidRegexKeepsPreviousConfig(t *testing.T) {
	cp := startControlPlane(t, "127.0.0.1:0")
	cp.set(t, "1", fullConfig(t, "/api/.*"))
	rec := &recorder{}
	c := startClient(t, cp.addr, rec)
	testutil.Eventually(t, 10*time.Second, "version 1", func() bool { return cp.acked(RouteType, "1") && complete(rec.last()) })
	applied := rec.count()

	// The snapshot cache does not validate: the invalid regex reaches the client as is.
	cp.set(t, "2", fullConfig(t, "("))
	testutil.Eventually(t, 10*time.Second, "an RDS NACK", func() bool { return cp.nack(RouteType) != nil })
	n := cp.nack(RouteType)
	want := `route "9080": virtual_hosts[0].routes[0].match.safe_regex: invalid regex "(": `
	if !strings.HasPrefix(n.GetErrorDetail().GetMessage(), want) {
		t.Errorf("NACK message = %q, want prefix %q", n.GetErrorDetail().GetMessage(), want)
	}
	if n.GetErrorDetail().GetCode() != 3 { // InvalidArgument
		t.Errorf("NACK code = %d, want 3", n.GetErrorDetail().GetCode())
	}
	if n.GetVersionInfo() != "1" {
		t.Errorf("NACK version_info = %q, want the last accepted 1", n.GetVersionInfo())
	}
	testutil.Eventually(t, 10*time.Second, "status shows the NACK", func() bool { return c.Status().Types["RDS"].NackVersion == "2" })
	// The other types of version 2 are applied; the route stays at version 1.
	testutil.Eventually(t, 10*time.Second, "LDS and CDS of version 2", func() bool { return cp.acked(ListenerType, "2") && cp.acked(ClusterType, "2") })
	s := rec.last()
	if s.Versions[RouteType] != "1" {
		t.Errorf("applied route version = %q, want 1", s.Versions[RouteType])
	}
	if re := s.Routes[fxRoute].VirtualHosts[0].Routes[0].Match.Regex; re == nil || re.String() != "^(?:/api/.*)$" {
		t.Errorf("applied route regex = %v, want the version 1 one", re)
	}
	st := c.Status().Types["RDS"]
	if st.Version != "1" || !strings.HasPrefix(st.NackReason, want) {
		t.Errorf("RDS status = %+v", st)
	}
	if rec.count() < applied {
		t.Errorf("snapshots went backwards")
	}
	// A fixed route is accepted and clears the NACK.
	cp.set(t, "3", fullConfig(t, "/v2/.*"))
	testutil.Eventually(t, 10*time.Second, "version 3 route", func() bool { return rec.last().Versions[RouteType] == "3" })
	if st := c.Status().Types["RDS"]; st.NackReason != "" || st.Version != "3" {
		t.Errorf("RDS status after fix = %+v", st)
	}
}

func TestApplierErrorIsNACKed(t *testing.T) {
	cp := startControlPlane(t, "127.0.0.1:0")
	cp.set(t, "1", fullConfig(t, ""))
	const bindErr = "listener 0.0.0.0_9080: listen tcp 127.0.0.2:9080: bind: address already in use"
	rec := &recorder{fail: func(s *resource.Snapshot) error {
		if len(s.Listeners) > 0 {
			return errors.New(bindErr)
		}
		return nil
	}}
	c := startClient(t, cp.addr, rec)
	testutil.Eventually(t, 10*time.Second, "an LDS NACK", func() bool { return cp.nack(ListenerType) != nil })
	if got := cp.nack(ListenerType).GetErrorDetail().GetMessage(); got != bindErr {
		t.Errorf("NACK message = %q, want %q", got, bindErr)
	}
	testutil.Eventually(t, 10*time.Second, "CDS ACK", func() bool { return cp.acked(ClusterType, "1") })
	rec.mu.Lock()
	for _, s := range rec.snaps {
		if len(s.Listeners) > 0 {
			t.Errorf("a snapshot with listeners was recorded despite the error")
		}
	}
	rec.mu.Unlock()
	if st := c.Status().Types["LDS"]; st.Received || st.NackReason != bindErr || st.NackVersion != "1" {
		t.Errorf("LDS status = %+v", st)
	}
}

func TestReconnectKeepsLastGoodConfig(t *testing.T) {
	cp := startControlPlane(t, "127.0.0.1:0")
	addr := cp.addr
	cp.set(t, "1", fullConfig(t, "", "127.0.0.11"))
	rec := &recorder{}
	c := startClient(t, addr, rec)
	testutil.Eventually(t, 10*time.Second, "version 1", func() bool { return complete(rec.last()) && rec.last().Versions[EndpointType] == "1" })
	before := rec.count()

	cp.stop()
	testutil.Eventually(t, 10*time.Second, "disconnected", func() bool { return !c.Status().Connected })
	if rec.count() != before {
		t.Errorf("applied %d snapshots while disconnected", rec.count()-before)
	}
	if st := c.Status().Types["LDS"]; st.Version != "1" {
		t.Errorf("LDS status while disconnected = %+v", st)
	}

	cp2 := startControlPlane(t, addr)
	cp2.set(t, "2", fullConfig(t, "", "127.0.0.11", "127.0.0.12"))
	testutil.Eventually(t, 10*time.Second, "version 2 after reconnect", func() bool {
		s := rec.last()
		return s.Versions[EndpointType] == "2" && len(s.Endpoints[fxCluster].Endpoints) == 2
	})
	if !c.Status().Connected {
		t.Errorf("not connected after reconnect")
	}
	// The first requests on the new stream carry the last accepted versions.
	for _, url := range []string{ListenerType, ClusterType, RouteType, EndpointType} {
		testutil.Eventually(t, 10*time.Second, "a "+url+" request on the new stream", func() bool { return len(cp2.requests(url)) > 0 })
		reqs := cp2.requests(url)
		if len(reqs) == 0 || reqs[0].GetVersionInfo() != "1" {
			t.Errorf("first %s request on the new stream: %v", url, reqs)
		}
	}
}

func TestConfigDump(t *testing.T) {
	cp := startControlPlane(t, "127.0.0.1:0")
	cp.set(t, "1", fullConfig(t, ""))
	rec := &recorder{}
	c := startClient(t, cp.addr, rec)
	testutil.Eventually(t, 10*time.Second, "config", func() bool { return complete(rec.last()) })

	for _, eds := range []bool{false, true} {
		out, err := c.ConfigDump(eds)
		if err != nil {
			t.Fatal(err)
		}
		s := string(out)
		wantOrder := []string{"BootstrapConfigDump", "ClustersConfigDump", "ListenersConfigDump", "RoutesConfigDump"}
		if eds {
			wantOrder = []string{"BootstrapConfigDump", "ClustersConfigDump", "EndpointsConfigDump", "ListenersConfigDump", "RoutesConfigDump"}
		}
		pos := -1
		for _, w := range wantOrder {
			i := strings.Index(s, `"@type": "type.googleapis.com/envoy.admin.v3.`+w+`"`)
			if i <= pos {
				t.Errorf("includeEDS=%v: %s missing or out of order", eds, w)
			}
			pos = i
		}
		if !eds && strings.Contains(s, "EndpointsConfigDump") {
			t.Errorf("EndpointsConfigDump without includeEDS")
		}
		for _, w := range []string{
			`"id": "` + testNode + `"`, `"cluster": "Kubernetes"`, `"NAMESPACE": "default"`,
			`"dynamic_active_clusters": [`, `"name": "` + fxCluster + `"`,
			`"dynamic_listeners": [`, `"active_state": {`, `"dynamic_route_configs": [`,
			`"version_info": "1"`, `"last_updated": "`,
			`"@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"`,
			"\n  \"configs\": [\n",
		} {
			if !strings.Contains(s, w) {
				t.Errorf("includeEDS=%v: config dump lacks %s", eds, w)
			}
		}
	}
}
