package ads

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/lucid-mesh/lucid/internal/contract"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

// deltaClient is a hand-driven incremental ADS client.
type deltaClient struct {
	t        *testing.T
	stream   discoverygrpc.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
	resps    chan *discoverygrpc.DeltaDiscoveryResponse
	sentNode bool
	id       string
}

func dialDelta(t *testing.T, addr, id string) *deltaClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := discoverygrpc.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := &deltaClient{t: t, stream: stream, resps: make(chan *discoverygrpc.DeltaDiscoveryResponse, 16), id: id}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			r, err := stream.Recv()
			if err != nil {
				return
			}
			c.resps <- r
		}
	}()
	t.Cleanup(func() { cancel(); <-done; conn.Close() })
	return c
}

func (c *deltaClient) send(typeURL string, sub, unsub []string, initial map[string]string, nonce, nack string) {
	c.t.Helper()
	req := &discoverygrpc.DeltaDiscoveryRequest{
		TypeUrl: typeURL, ResourceNamesSubscribe: sub, ResourceNamesUnsubscribe: unsub,
		InitialResourceVersions: initial, ResponseNonce: nonce,
	}
	if !c.sentNode {
		req.Node, c.sentNode = &corepb.Node{Id: c.id}, true
	}
	if nack != "" {
		req.ErrorDetail = &rpcstatus.Status{Code: 3, Message: nack}
	}
	if err := c.stream.Send(req); err != nil {
		c.t.Fatal(err)
	}
}

func (c *deltaClient) next(typeURL string) *discoverygrpc.DeltaDiscoveryResponse {
	c.t.Helper()
	select {
	case r := <-c.resps:
		if r.GetTypeUrl() != typeURL {
			c.t.Fatalf("got a %s delta response, want %s", shortType(r.GetTypeUrl()), shortType(typeURL))
		}
		return r
	case <-time.After(5 * time.Second):
		c.t.Fatalf("no %s delta response within 5s", shortType(typeURL))
		return nil
	}
}

func (c *deltaClient) ack(r *discoverygrpc.DeltaDiscoveryResponse) {
	c.t.Helper()
	c.send(r.GetTypeUrl(), nil, nil, nil, r.GetNonce(), "")
}

func (c *deltaClient) quiet(why string) {
	c.t.Helper()
	select {
	case r := <-c.resps:
		c.t.Fatalf("%s: unexpected %s delta response %v", why, shortType(r.GetTypeUrl()), deltaNames(r))
	case <-time.After(250 * time.Millisecond):
	}
}

func deltaNames(r *discoverygrpc.DeltaDiscoveryResponse) []string {
	var out []string
	for _, x := range r.GetResources() {
		out = append(out, x.GetName())
	}
	slices.Sort(out)
	return out
}

// The incremental protocol: wildcard clusters and listeners, named endpoints and routes;
// only what changed is sent, names that go away are removed, names that do not exist are
// reported removed and sent once they appear; ACKs and NACKs are recorded as in SotW.
func TestDeltaProtocol(t *testing.T) {
	const a, b, later = "outbound|80||a", "outbound|80||b", "outbound|80||later"
	g := &setGen{}
	g.set(resourcev3.ClusterType, edsCluster(a), edsCluster(b))
	g.set(resourcev3.EndpointType, cla(a, 8001), cla(b, 8002))
	g.set(resourcev3.ListenerType, rdsListener(t, 80, "80"))
	g.set(resourcev3.RouteType, routeConfig("80", a))
	s, addr := startSetServer(t, g)
	c := dialDelta(t, addr, "sidecar~127.0.0.1~a.default~default.svc.cluster.local")

	c.send(resourcev3.ClusterType, nil, nil, nil, "", "")
	cds := c.next(resourcev3.ClusterType)
	if got := deltaNames(cds); !slices.Equal(got, []string{a, b}) {
		t.Fatalf("wildcard CDS = %v", got)
	}
	for _, r := range cds.GetResources() {
		if r.GetVersion() == "" || r.GetResource() == nil {
			t.Errorf("resource %s without version or body", r.GetName())
		}
	}
	c.ack(cds)
	c.send(resourcev3.EndpointType, []string{a, b, later}, nil, nil, "", "")
	eds := c.next(resourcev3.EndpointType)
	if got := deltaNames(eds); !slices.Equal(got, []string{a, b}) || !slices.Equal(eds.GetRemovedResources(), []string{later}) {
		t.Fatalf("EDS = %v removed %v, want a and b, and %s reported as not existing", got, eds.GetRemovedResources(), later)
	}
	c.ack(eds)
	c.send(resourcev3.ListenerType, nil, nil, nil, "", "")
	c.ack(c.next(resourcev3.ListenerType))
	c.send(resourcev3.RouteType, []string{"80"}, nil, nil, "", "")
	c.ack(c.next(resourcev3.RouteType))
	testutil.Eventually(t, 5*time.Second, "synced", func() bool {
		ps := s.SyncStatus()
		return len(ps) == 1 && ps[0].Types["RDS"].State == contract.StateSynced
	})
	c.quiet("nothing changed")

	// One endpoint changes and "later" appears: one EDS response with just those two.
	g.set(resourcev3.EndpointType, cla(a, 9001), cla(b, 8002), cla(later, 8003))
	s.Push(PushRequest{Version: "2"})
	eds = c.next(resourcev3.EndpointType)
	if got := deltaNames(eds); !slices.Equal(got, []string{a, later}) || len(eds.GetRemovedResources()) != 0 {
		t.Fatalf("EDS after a change = %v removed %v, want [%s %s]", got, eds.GetRemovedResources(), a, later)
	}
	c.ack(eds)
	c.quiet("only endpoints changed")

	// Cluster b goes away: CDS removes it, nothing else is resent.
	g.set(resourcev3.ClusterType, edsCluster(a))
	g.set(resourcev3.EndpointType, cla(a, 9001), cla(later, 8003))
	s.Push(PushRequest{Version: "3"})
	cds = c.next(resourcev3.ClusterType)
	if len(cds.GetResources()) != 0 || !slices.Equal(cds.GetRemovedResources(), []string{b}) {
		t.Fatalf("CDS after b left = %v removed %v, want only b removed", deltaNames(cds), cds.GetRemovedResources())
	}
	c.ack(cds)
	eds = c.next(resourcev3.EndpointType)
	if !slices.Equal(eds.GetRemovedResources(), []string{b}) {
		t.Fatalf("EDS after b left: removed %v, want [%s]", eds.GetRemovedResources(), b)
	}
	// A NACK is recorded with its reason.
	c.send(resourcev3.EndpointType, nil, nil, nil, eds.GetNonce(), "bad endpoints")
	testutil.Eventually(t, 5*time.Second, "NACK recorded", func() bool {
		ps := s.SyncStatus()
		return len(ps) == 1 && ps[0].Types["EDS"].State == contract.StateError && ps[0].Types["EDS"].NackReason == "bad endpoints"
	})
}

// A client reconnecting with initial_resource_versions gets only what it lacks.
func TestDeltaInitialVersions(t *testing.T) {
	const a, b = "outbound|80||a", "outbound|80||b"
	g := &setGen{}
	g.set(resourcev3.ClusterType, edsCluster(a), edsCluster(b))
	g.set(resourcev3.EndpointType, cla(a, 8001), cla(b, 8002))
	_, addr := startSetServer(t, g)
	c := dialDelta(t, addr, "sidecar~127.0.0.1~a.default~default.svc.cluster.local")
	c.send(resourcev3.ClusterType, nil, nil, nil, "", "")
	first := c.next(resourcev3.ClusterType)
	versions := map[string]string{}
	for _, r := range first.GetResources() {
		versions[r.GetName()] = r.GetVersion()
	}

	g.set(resourcev3.ClusterType, edsCluster(a), edsCluster(b+"2"))
	g.set(resourcev3.EndpointType, cla(a, 8001), cla(b+"2", 8002))
	c2 := dialDelta(t, addr, "sidecar~127.0.0.1~a.default~default.svc.cluster.local")
	c2.send(resourcev3.ClusterType, nil, nil, versions, "", "")
	r := c2.next(resourcev3.ClusterType)
	if got := deltaNames(r); !slices.Equal(got, []string{b + "2"}) || !slices.Equal(r.GetRemovedResources(), []string{b}) {
		t.Fatalf("reconnect with versions of %v: got %v removed %v, want only %s new and %s removed", versions, got, r.GetRemovedResources(), b+"2", b)
	}
}

// A client reconnecting that already holds every named resource at its version is sent
// nothing for it, and proxy-status shows the type SYNCED with this control plane (not NOT
// SENT, as a replaced control plane pod showed before).
func TestDeltaReconnectUpToDateIsSynced(t *testing.T) {
	const a = "outbound|80||a"
	g := &setGen{}
	g.set(resourcev3.ClusterType, edsCluster(a))
	g.set(resourcev3.EndpointType, cla(a, 8001))
	s, addr := startSetServer(t, g)
	const id = "sidecar~127.0.0.1~a.default~default.svc.cluster.local"
	c := dialDelta(t, addr, id)
	c.send(resourcev3.EndpointType, []string{a}, nil, nil, "", "")
	first := c.next(resourcev3.EndpointType)
	versions := map[string]string{}
	for _, r := range first.GetResources() {
		versions[r.GetName()] = r.GetVersion()
	}

	c2 := dialDelta(t, addr, id)
	c2.send(resourcev3.EndpointType, []string{a}, nil, versions, "", "")
	c2.quiet("the client holds every resource it names")
	testutil.Eventually(t, 5*time.Second, "EDS SYNCED after the reconnect", func() bool {
		for _, ps := range s.SyncStatus() {
			if ts := ps.Types["EDS"]; ts != nil && ts.State == contract.StateSynced && ts.SentNonce == heldNonce {
				return true
			}
		}
		return false
	})

	// The next change is sent and acknowledged as usual.
	g.set(resourcev3.EndpointType, cla(a, 8009))
	s.Push(PushRequest{Version: "2"})
	r := c2.next(resourcev3.EndpointType)
	if got := deltaNames(r); !slices.Equal(got, []string{a}) {
		t.Fatalf("after a change: %v, want %s", got, a)
	}
}

// notReadyGen has no configuration until ready is set.
type notReadyGen struct {
	setGen
	ready atomic.Bool
}

func (g *notReadyGen) Generate(n *corepb.Node) (Resources, error) {
	if !g.ready.Load() {
		return nil, ErrNotReady
	}
	return g.setGen.Generate(n)
}

// A proxy that connects before the first configuration is a normal start: nothing is
// logged as an error, and the first push answers it.
func TestConnectBeforeFirstConfiguration(t *testing.T) {
	const a = "outbound|80||a"
	g := &notReadyGen{}
	g.set(resourcev3.ClusterType, edsCluster(a))
	g.set(resourcev3.EndpointType, cla(a, 8001))
	logs := &testutil.Buffer{}
	s, addr := serve(t, g, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	c := dialDelta(t, addr, "sidecar~127.0.0.1~a.default~default.svc.cluster.local")
	c.send(resourcev3.ClusterType, nil, nil, nil, "", "")
	c.quiet("no configuration yet")
	g.ready.Store(true)
	s.Push(PushRequest{Version: "1"})
	if got := deltaNames(c.next(resourcev3.ClusterType)); !slices.Equal(got, []string{a}) {
		t.Fatalf("first push: %v, want %s", got, a)
	}
	if l := logs.String(); strings.Contains(l, "level=ERROR") || !strings.Contains(l, "before the first configuration") {
		t.Errorf("a proxy connecting first should be logged at debug only:\n%s", l)
	}
}
