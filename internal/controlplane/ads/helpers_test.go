package ads

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"

	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointpb "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/lucid-mesh/lucid/internal/contract"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

const (
	testCluster  = "outbound|9080||reviews.default.svc.cluster.local"
	testListener = "0.0.0.0_9080"
	testRoute    = "9080"
)

// fakeGen produces, per node, a listener whose HCM uses RDS, its route configuration, an
// EDS cluster and its ClusterLoadAssignment. Tests change its knobs between Pushes.
type fakeGen struct {
	mu       sync.Mutex
	rdsName  string            // the route name the listener references (testRoute when "")
	port     map[string]uint32 // per node ID endpoint port (9080 when absent)
	err      error
	generate map[string]int // calls per node ID
}

func newFakeGen() *fakeGen { return &fakeGen{port: map[string]uint32{}, generate: map[string]int{}} }

func (g *fakeGen) set(f func(g *fakeGen)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f(g)
}

func (g *fakeGen) calls(id string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.generate[id]
}

func adsSource() *corepb.ConfigSource {
	return &corepb.ConfigSource{
		ResourceApiVersion:    corepb.ApiVersion_V3,
		ConfigSourceSpecifier: &corepb.ConfigSource_Ads{Ads: &corepb.AggregatedConfigSource{}},
	}
}

func sockAddr(ip string, port uint32) *corepb.Address {
	return &corepb.Address{Address: &corepb.Address_SocketAddress{SocketAddress: &corepb.SocketAddress{
		Address: ip, PortSpecifier: &corepb.SocketAddress_PortValue{PortValue: port},
	}}}
}

func (g *fakeGen) Generate(node *corepb.Node) (Resources, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.generate[node.GetId()]++
	if g.err != nil {
		return nil, g.err
	}
	rds := g.rdsName
	if rds == "" {
		rds = testRoute
	}
	port := g.port[node.GetId()]
	if port == 0 {
		port = 9080
	}

	manager, err := anypb.New(&hcmpb.HttpConnectionManager{
		StatPrefix: "outbound_0.0.0.0_9080",
		RouteSpecifier: &hcmpb.HttpConnectionManager_Rds{Rds: &hcmpb.Rds{
			RouteConfigName: rds, ConfigSource: adsSource(),
		}},
	})
	if err != nil {
		return nil, err
	}
	listener := &listenerpb.Listener{
		Name:    testListener,
		Address: sockAddr("0.0.0.0", 9080),
		FilterChains: []*listenerpb.FilterChain{{Filters: []*listenerpb.Filter{{
			Name:       "envoy.filters.network.http_connection_manager",
			ConfigType: &listenerpb.Filter_TypedConfig{TypedConfig: manager},
		}}}},
	}
	route := &routepb.RouteConfiguration{
		Name: testRoute,
		VirtualHosts: []*routepb.VirtualHost{{
			Name:    "reviews.default.svc.cluster.local:9080",
			Domains: []string{"reviews.default.svc.cluster.local", "reviews"},
			Routes: []*routepb.Route{{
				Match:  &routepb.RouteMatch{PathSpecifier: &routepb.RouteMatch_Prefix{Prefix: "/"}},
				Action: &routepb.Route_Route{Route: &routepb.RouteAction{ClusterSpecifier: &routepb.RouteAction_Cluster{Cluster: testCluster}}},
			}},
		}},
	}
	cluster := &clusterpb.Cluster{
		Name:                 testCluster,
		ClusterDiscoveryType: &clusterpb.Cluster_Type{Type: clusterpb.Cluster_EDS},
		EdsClusterConfig:     &clusterpb.Cluster_EdsClusterConfig{EdsConfig: adsSource(), ServiceName: testCluster},
	}
	cla := &endpointpb.ClusterLoadAssignment{
		ClusterName: testCluster,
		Endpoints: []*endpointpb.LocalityLbEndpoints{{LbEndpoints: []*endpointpb.LbEndpoint{{
			HostIdentifier: &endpointpb.LbEndpoint_Endpoint{Endpoint: &endpointpb.Endpoint{Address: sockAddr("127.0.0.1", port)}},
		}}}},
	}
	return Resources{
		resourcev3.ListenerType: {NewPart(listener)},
		resourcev3.RouteType:    {NewPart(route)},
		resourcev3.ClusterType:  {NewPart(cluster)},
		resourcev3.EndpointType: {NewPart(cla)},
	}, nil
}

// records returns the JSON log records in logs whose message contains msg.
func records(t *testing.T, logs *testutil.Buffer, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range logs.Lines() {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		if m, _ := rec["msg"].(string); strings.Contains(m, msg) {
			out = append(out, rec)
		}
	}
	return out
}

// clock is a settable clock for the Server.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time           { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration)  { c.offset.Add(int64(d)) }
func (c *clock) install(s *Server) *clock { s.now = c.now; return c }

// testServer is a Server serving on 127.0.0.1 with its logs captured.
type testServer struct {
	*Server
	gen  *fakeGen
	addr string
	logs *testutil.Buffer
}

func startServer(t *testing.T) *testServer {
	t.Helper()
	logs := &testutil.Buffer{}
	gen := newFakeGen()
	s, addr := serve(t, gen, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	return &testServer{Server: s, gen: gen, addr: addr, logs: logs}
}

// serve runs a Server for gen on 127.0.0.1 until the test ends, and returns its address.
func serve(t *testing.T, gen Generator, log *slog.Logger) (*Server, string) {
	t.Helper()
	s := New(gen, log)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve returned %v after cancel, want nil", err)
		}
	})
	return s, lis.Addr().String()
}

// adsClient is a hand-driven ADS client: it sends DiscoveryRequests as a test says and
// collects the responses.
type adsClient struct {
	t        *testing.T
	node     *corepb.Node
	conn     *grpc.ClientConn
	stream   discoverygrpc.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	cancel   context.CancelFunc
	resps    chan *discoverygrpc.DiscoveryResponse
	done     chan struct{}
	sentNode bool
}

func dial(t *testing.T, addr, id string, meta map[string]any) *adsClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := discoverygrpc.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		cancel()
		conn.Close()
		t.Fatal(err)
	}
	md, err := structpb.NewStruct(meta)
	if err != nil {
		t.Fatal(err)
	}
	c := &adsClient{
		t: t, conn: conn, stream: stream, cancel: cancel,
		node:  &corepb.Node{Id: id, Cluster: "reviews.default", Metadata: md},
		resps: make(chan *discoverygrpc.DiscoveryResponse, 16),
		done:  make(chan struct{}),
	}
	go func() {
		defer close(c.done)
		for {
			resp, err := stream.Recv()
			if err != nil {
				return
			}
			c.resps <- resp
		}
	}()
	t.Cleanup(c.close)
	return c
}

func (c *adsClient) close() {
	c.cancel()
	<-c.done
	c.conn.Close()
}

// request sends one DiscoveryRequest; the node goes on the first one only, as Envoy does.
func (c *adsClient) request(typeURL, version, nonce string, names []string, nack string) {
	c.t.Helper()
	req := &discoverygrpc.DiscoveryRequest{
		TypeUrl: typeURL, VersionInfo: version, ResponseNonce: nonce, ResourceNames: names,
	}
	if !c.sentNode {
		req.Node = c.node
		c.sentNode = true
	}
	if nack != "" {
		req.ErrorDetail = &rpcstatus.Status{Code: 3, Message: nack}
	}
	if err := c.stream.Send(req); err != nil {
		c.t.Fatalf("send %s request: %v", shortType(typeURL), err)
	}
}

// ack acknowledges resp; nack rejects it with reason.
func (c *adsClient) ack(resp *discoverygrpc.DiscoveryResponse, names []string) {
	c.t.Helper()
	c.request(resp.GetTypeUrl(), resp.GetVersionInfo(), resp.GetNonce(), names, "")
}

func (c *adsClient) nack(resp *discoverygrpc.DiscoveryResponse, lastGood string, names []string, reason string) {
	c.t.Helper()
	c.request(resp.GetTypeUrl(), lastGood, resp.GetNonce(), names, reason)
}

// next waits for the next response, which must be of typeURL.
func (c *adsClient) next(typeURL string) *discoverygrpc.DiscoveryResponse {
	c.t.Helper()
	select {
	case resp := <-c.resps:
		if resp.GetTypeUrl() != typeURL {
			c.t.Fatalf("got a %s response (version %s), want %s", shortType(resp.GetTypeUrl()), resp.GetVersionInfo(), shortType(typeURL))
		}
		return resp
	case <-time.After(5 * time.Second):
		c.t.Fatalf("no %s response within 5s", shortType(typeURL))
		return nil
	}
}

// quiet asserts that no response arrives for a while.
func (c *adsClient) quiet(why string) {
	c.t.Helper()
	select {
	case resp := <-c.resps:
		c.t.Fatalf("%s: got an unexpected %s response, version %s", why, shortType(resp.GetTypeUrl()), resp.GetVersionInfo())
	case <-time.After(250 * time.Millisecond):
	}
}

// names unmarshals a response's resources and returns their names.
func names(t *testing.T, resp *discoverygrpc.DiscoveryResponse) []string {
	t.Helper()
	var out []string
	for _, a := range resp.GetResources() {
		m, err := a.UnmarshalNew()
		if err != nil {
			t.Fatalf("resource %s: %v", a.GetTypeUrl(), err)
		}
		n, ok := m.(interface{ GetName() string })
		if cla, isCLA := m.(*endpointpb.ClusterLoadAssignment); isCLA {
			out = append(out, cla.GetClusterName())
			continue
		}
		if !ok {
			t.Fatalf("resource %T has no name", m)
		}
		out = append(out, n.GetName())
	}
	return out
}

// endpointPort returns the port of the first endpoint in an EDS response.
func endpointPort(t *testing.T, resp *discoverygrpc.DiscoveryResponse) uint32 {
	t.Helper()
	cla := &endpointpb.ClusterLoadAssignment{}
	if err := resp.GetResources()[0].UnmarshalTo(cla); err != nil {
		t.Fatal(err)
	}
	return cla.GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress().GetPortValue()
}

// status returns the current status of proxy id (nil if unknown).
func (s *testServer) status(id string) *contract.ProxyStatus {
	for _, ps := range s.SyncStatus() {
		if ps.ID == id {
			return &ps
		}
	}
	return nil
}

// typeStatus waits until proxy id's status for short satisfies cond and returns it.
func (s *testServer) typeStatus(t *testing.T, id, short string, cond func(*contract.TypeStatus) bool) *contract.TypeStatus {
	t.Helper()
	var got *contract.TypeStatus
	testutil.Eventually(t, 5*time.Second, id+" "+short+" status", func() bool {
		ps := s.status(id)
		if ps == nil {
			return false
		}
		got = ps.Types[short]
		return got != nil && cond(got)
	})
	return got
}

var errGen = errors.New("model not ready")
