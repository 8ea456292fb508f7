package ads

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointpb "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/lucid-mesh/lucid/internal/testutil"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// bigCLA is an assignment with n endpoints (about 40 bytes each on the wire).
func bigCLA(name string, n int, port uint32) *endpointpb.ClusterLoadAssignment {
	c := cla(name, port)
	for i := range n {
		c.Endpoints[0].LbEndpoints = append(c.Endpoints[0].LbEndpoints, &endpointpb.LbEndpoint{
			HostIdentifier: &endpointpb.LbEndpoint_Endpoint{Endpoint: &endpointpb.Endpoint{Address: sockAddr(fmt.Sprintf("10.0.%d.%d", i/250, i%250), port)}},
		})
	}
	return c
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// A client that subscribes and then never reads nor ACKs does not delay the others, and
// the server's memory does not grow with the pushes it cannot deliver: its connection
// blocks in one send and folds every later push into the newest state.
func TestStuckClientDelaysNobody(t *testing.T) {
	const name = "outbound|80||a"
	g := &setGen{}
	g.set(resourcev3.ClusterType, edsCluster(name))
	g.set(resourcev3.EndpointType, bigCLA(name, 2000, 1))
	s, addr := startSetServer(t, g)

	// The stuck client: a raw stream nobody reads.
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stuck, err := discoverygrpc.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node := &corepb.Node{Id: "sidecar~127.0.0.9~stuck.default~default.svc.cluster.local"}
	for _, r := range []*discoverygrpc.DiscoveryRequest{{Node: node, TypeUrl: resourcev3.ClusterType}, {TypeUrl: resourcev3.EndpointType, ResourceNames: []string{name}}} {
		if err := stuck.Send(r); err != nil {
			t.Fatal(err)
		}
	}

	ok := dial(t, addr, "sidecar~127.0.0.1~a.default~default.svc.cluster.local", nil)
	ok.request(resourcev3.ClusterType, "", "", nil, "")
	ok.ack(ok.next(resourcev3.ClusterType), nil)
	ok.request(resourcev3.EndpointType, "", "", []string{name}, "")
	ok.ack(ok.next(resourcev3.EndpointType), []string{name})

	// Fill the stuck stream's flow-control window, then measure.
	for i := range 8 {
		g.set(resourcev3.EndpointType, bigCLA(name, 2000, uint32(100+i)))
		s.Push(PushRequest{Version: fmt.Sprint("warm", i)})
		ok.ack(ok.next(resourcev3.EndpointType), []string{name})
	}
	before := heapInUse()
	for i := range 120 {
		g.set(resourcev3.EndpointType, bigCLA(name, 2000, uint32(1000+i)))
		s.Push(PushRequest{Version: fmt.Sprint("v", i)})
		// A push held behind the stuck stream would never arrive: next fails after 5 s,
		// which tells that from a slow but moving machine (-race, two cores, other tests).
		eds := ok.next(resourcev3.EndpointType)
		if p := endpointPort(t, eds); p != uint32(1000+i) {
			t.Fatalf("push %d: the healthy client got port %d, want %d", i, p, 1000+i)
		}
		ok.ack(eds, []string{name})
	}
	after := heapInUse()
	// 120 undelivered pushes of ~80 KB each would be 9 MB; one folded state is one.
	if grown := int64(after) - int64(before); grown > 3<<20 {
		t.Errorf("heap grew by %d KiB over 120 pushes a stuck client could not take", grown>>10)
	}
}

// The server counts pushes per type, their send times, convergence and rejections under
// istiod's metric names.
func TestPilotMetrics(t *testing.T) {
	s := startServer(t)
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(s.Server, reg)
	if err != nil {
		t.Fatal(err)
	}
	s.Metrics = m
	c := dial(t, s.addr, "a", nil)
	handshake(t, c)
	s.gen.set(func(g *fakeGen) { g.port["a"] = 9999 })
	s.Push(PushRequest{Version: "v2", Start: time.Now().Add(-time.Second)})
	eds := c.next(resourcev3.EndpointType)
	c.nack(eds, "", []string{testCluster}, "no")
	testutil.Eventually(t, 5*time.Second, "metrics", func() bool {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, mf := range mfs {
			got[mf.GetName()] = len(mf.GetMetric()) > 0
		}
		return got["pilot_xds_pushes"] && got["pilot_xds_push_time"] && got["pilot_proxy_convergence_time"] &&
			got["pilot_total_xds_rejects"] && got["pilot_xds"] && got["pilot_debounce_time"]
	})
}

// A proxy is behind from the configuration change it has not acknowledged until it ACKs
// everything it was sent (proxy-status' LAG).
func TestLagUntilAcked(t *testing.T) {
	s := startServer(t)
	c := dial(t, s.addr, "a", nil)
	handshake(t, c)
	testutil.Eventually(t, 5*time.Second, "synced", func() bool { return s.status("a").BehindSince.IsZero() })

	changed := time.Now().Add(-5 * time.Second)
	s.gen.set(func(g *fakeGen) { g.port["a"] = 9999 })
	s.Push(PushRequest{Version: "v2", Start: changed})
	eds := c.next(resourcev3.EndpointType)
	if got := s.status("a").BehindSince; !got.Equal(changed) {
		t.Errorf("BehindSince before the ACK = %v, want the change's time %v", got, changed)
	}
	c.ack(eds, []string{testCluster})
	testutil.Eventually(t, 5*time.Second, "lag cleared by the ACK", func() bool { return s.status("a").BehindSince.IsZero() })
}

// A response the client has not answered holds back the next push to it; the push then
// carries the newest state only (pushes in between are folded, never queued).
func TestPushWaitsForTheAnswer(t *testing.T) {
	s := startServer(t)
	c := dial(t, s.addr, "a", nil)
	handshake(t, c)
	s.gen.set(func(g *fakeGen) { g.port["a"] = 9001 })
	s.Push(PushRequest{Version: "v2"})
	first := c.next(resourcev3.EndpointType)
	for i, p := range []uint32{9002, 9003} {
		s.gen.set(func(g *fakeGen) { g.port["a"] = p })
		s.Push(PushRequest{Version: fmt.Sprint("v", 3+i)})
	}
	c.quiet("pushes while the last response is unanswered")
	c.ack(first, []string{testCluster})
	if p := endpointPort(t, c.next(resourcev3.EndpointType)); p != 9003 {
		t.Errorf("after the ACK the client got port %d, want the newest (9003)", p)
	}
	c.quiet("one response for the folded pushes")
}
