package ads_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/xds"

	"github.com/lucid-mesh/lucid/internal/controlplane/ads"
	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/controlplane/model"
	"github.com/lucid-mesh/lucid/internal/controlplane/translate"
)

// grpcMesh is a gRPC service with two versions behind a DestinationRule (LEAST_REQUEST,
// outlier detection) and a VirtualService splitting it 50/50 with retries and a timeout.
const grpcMesh = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: echo, namespace: default}
spec:
  hosts: [echo.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9090, name: grpc, protocol: GRPC}]
  endpoints:
  - {address: 127.0.141.11, ports: {grpc: %d}, labels: {version: v1}}
  - {address: 127.0.141.12, ports: {grpc: %d}, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo, namespace: default}
spec:
  host: echo.default.svc.cluster.local
  trafficPolicy:
    loadBalancer: {simple: LEAST_REQUEST}
    outlierDetection: {consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo, namespace: default}
spec:
  hosts: [echo.default.svc.cluster.local]
  http:
  - timeout: 5s
    retries: {attempts: 2, retryOn: unavailable}
    route:
    - {destination: {host: echo.default.svc.cluster.local, subset: v1}, weight: 50}
    - {destination: {host: echo.default.svc.cluster.local, subset: v2}, weight: 50}
`

// grpcGen serves translate's resources for a proxyless gRPC client (GENERATOR grpc):
// listeners named by the targets a client dials, each an api_listener HTTP connection
// manager taking its service's route configuration.
type grpcGen struct {
	m *model.Mesh
	c translate.Cache
}

func (g *grpcGen) Generate(node *corepb.Node) (ads.Resources, error) {
	p, err := model.ParseNodeID(node.GetId())
	if err != nil {
		return nil, err
	}
	p.GRPC = true
	res := g.c.Generate(g.m, p)
	return ads.Resources{
		resourcev3.ListenerType: {ads.NewPart(res.Listeners...)},
		resourcev3.RouteType:    {ads.NewPart(res.Routes...)},
		resourcev3.ClusterType:  {ads.NewPart(res.Clusters...)},
		resourcev3.EndpointType: {ads.NewPart(res.Endpoints...)},
	}, nil
}

// countingServer is a gRPC health server that counts the calls it answers.
func countingServer(t *testing.T, ip string) (port int, calls *atomic.Int64) {
	t.Helper()
	lis, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	calls = &atomic.Int64{}
	gs := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		calls.Add(1)
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(gs, health.NewServer())
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return lis.Addr().(*net.TCPAddr).Port, calls
}

// A real proxyless gRPC client (grpc-go's xDS resolver and balancers) asks the control
// plane for one listener, then the route configuration, clusters and endpoints it names,
// each by name, accepts what it gets and routes RPCs over the weighted subsets.
func TestGRPCProxylessClient(t *testing.T) {
	p1, v1 := countingServer(t, "127.0.141.11")
	p2, v2 := countingServer(t, "127.0.141.12")
	objs, diags := config.Parse("mesh.yaml", fmt.Appendf(nil, grpcMesh, p1, p2))
	for _, d := range diags {
		if d.Level == config.Error {
			t.Fatalf("config: %s", d)
		}
	}
	m, _ := model.Build(objs, nil)
	const target = "echo.default.svc.cluster.local:9090"
	srv := ads.New(&grpcGen{m: m}, slog.New(slog.DiscardHandler))
	lis, err := net.Listen("tcp", "127.0.141.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	srv.Push(ads.PushRequest{Version: "1"})

	bootstrap, err := json.Marshal(map[string]any{
		"xds_servers": []any{map[string]any{
			"server_uri":      lis.Addr().String(),
			"channel_creds":   []any{map[string]any{"type": "insecure"}},
			"server_features": []string{"xds_v3"},
		}},
		"node": map[string]any{"id": "sidecar~127.0.141.2~client.default~default.svc.cluster.local", "cluster": "client.default"},
	})
	if err != nil {
		t.Fatal(err)
	}
	resolver, err := xds.NewXDSResolverWithConfigForTesting(bootstrap)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("xds:///"+target, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithResolvers(resolver))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	client := healthpb.NewHealthClient(conn)
	const n = 40
	for i := range n {
		cctx, c := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := client.Check(cctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
		c()
		if err != nil {
			t.Fatalf("RPC %d through the xDS configuration: %v", i, err)
		}
	}
	if v1.Load() == 0 || v2.Load() == 0 || v1.Load()+v2.Load() != n {
		t.Fatalf("calls v1=%d v2=%d, want %d split over both subsets", v1.Load(), v2.Load(), n)
	}
	var connected bool
	for _, ps := range srv.SyncStatus() {
		connected = connected || ps.Connected
		for short, ts := range ps.Types {
			if ts.NackReason != "" {
				t.Errorf("grpc-go rejected %s: %s", short, ts.NackReason)
			}
		}
	}
	if !connected {
		t.Errorf("the gRPC client is not in the sync status")
	}
}
