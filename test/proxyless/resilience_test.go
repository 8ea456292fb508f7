package proxyless

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// resilienceMesh: one service per feature gRPC applies from the VirtualService and
// DestinationRule, each on its own plain gRPC servers.
const resilienceMesh = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: flaky, namespace: default}
spec:
  hosts: [flaky.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9090, name: grpc, protocol: GRPC}]
  endpoints: [{address: 127.0.171.51}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: flaky, namespace: default}
spec:
  hosts: [flaky.default.svc.cluster.local]
  http:
  - retries: {attempts: 3, retryOn: unavailable}
    route: [{destination: {host: flaky.default.svc.cluster.local}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: slow, namespace: default}
spec:
  hosts: [slow.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9090, name: grpc, protocol: GRPC}]
  endpoints: [{address: 127.0.171.52}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: slow, namespace: default}
spec:
  hosts: [slow.default.svc.cluster.local]
  http:
  - timeout: 300ms
    route: [{destination: {host: slow.default.svc.cluster.local}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: pool, namespace: default}
spec:
  hosts: [pool.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9090, name: grpc, protocol: GRPC}]
  endpoints: [{address: 127.0.171.53}, {address: 127.0.171.54}, {address: 127.0.171.55}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: pool, namespace: default}
spec:
  host: pool.default.svc.cluster.local
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    outlierDetection: {consecutive5xxErrors: 3, interval: 500ms, baseEjectionTime: 60s, maxEjectionPercent: 50}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: rr, namespace: default}
spec:
  hosts: [rr.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9091, name: grpc, protocol: GRPC}]
  endpoints: [{address: 127.0.171.56}, {address: 127.0.171.57}, {address: 127.0.171.58}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: rr, namespace: default}
spec:
  host: rr.default.svc.cluster.local
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: lr, namespace: default}
spec:
  hosts: [lr.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9092, name: grpc, protocol: GRPC}]
  endpoints: [{address: 127.0.171.56}, {address: 127.0.171.57}, {address: 127.0.171.58}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: lr, namespace: default}
spec:
  host: lr.default.svc.cluster.local
  trafficPolicy: {loadBalancer: {simple: LEAST_REQUEST}}
`

// behaving is a plain gRPC server (health service) at addr that runs behave before each
// call it answers (an error fails the call) and counts the calls.
func behaving(t *testing.T, addr string, behave func(ctx context.Context, n int64) error) *atomic.Int64 {
	t.Helper()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("server %s: %v", addr, err)
	}
	calls := &atomic.Int64{}
	gs := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if err := behave(ctx, calls.Add(1)); err != nil {
			return nil, err
		}
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(gs, health.NewServer())
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return calls
}

func fine(context.Context, int64) error { return nil }

// startMesh runs `lucid discovery` on a directory holding yaml.
func startMesh(t *testing.T, yaml string) (ads string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mesh")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "mesh.yaml"), []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	ads, _ = startDiscoveryOn(t, dir, "127.0.171.50:0", "", "")
	return ads
}

// Retries, timeout, outlier detection and load balancing as gRPC applies them from
// Lucid's configuration, each observed at real grpc-go servers.
func TestProxylessResilience(t *testing.T) {
	ads := startMesh(t, resilienceMesh)

	t.Run("retries", func(t *testing.T) {
		// The server fails every first attempt with UNAVAILABLE; the retry succeeds.
		attempts := behaving(t, "127.0.171.51:9090", func(_ context.Context, n int64) error {
			if n%2 == 1 {
				return status.Error(codes.Unavailable, "first attempt fails")
			}
			return nil
		})
		conn := client(t, ads, "flaky.default.svc.cluster.local:9090")
		for i := range 5 {
			if err := check(conn); err != nil {
				t.Fatalf("call %d: %v, want the retry (retryOn unavailable) to succeed", i, err)
			}
		}
		if n := attempts.Load(); n != 10 {
			t.Errorf("the server saw %d attempts for 5 calls, want 10 (each retried once)", n)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		behaving(t, "127.0.171.52:9090", func(ctx context.Context, _ int64) error {
			select {
			case <-time.After(5 * time.Second):
				return nil
			case <-ctx.Done():
				// The deadline gRPC carried from the route's timeout: answer as a server
				// that honours it (an OK sent now could race the client's own deadline).
				return status.FromContextError(ctx.Err()).Err()
			}
		})
		conn := client(t, ads, "slow.default.svc.cluster.local:9090")
		start := time.Now()
		err := check(conn) // its own deadline is 10 s
		if status.Code(err) != codes.DeadlineExceeded || time.Since(start) > 4*time.Second {
			t.Errorf("a call to a server that answers in 5 s: %v after %v, want DEADLINE_EXCEEDED from the route's 300ms timeout", err, time.Since(start))
		}
	})

	t.Run("outlier detection", func(t *testing.T) {
		good1 := behaving(t, "127.0.171.53:9090", fine)
		good2 := behaving(t, "127.0.171.54:9090", fine)
		bad := behaving(t, "127.0.171.55:9090", func(context.Context, int64) error { return status.Error(codes.Internal, "broken") })
		conn := client(t, ads, "pool.default.svc.cluster.local:9090")
		// Calls for 3 s: the broken server fails its share until an interval ejects it.
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			_ = check(conn)
			time.Sleep(10 * time.Millisecond)
		}
		if bad.Load() == 0 {
			t.Fatal("the broken server never got a call: round robin does not reach it")
		}
		before := bad.Load()
		failed := 0
		for range 30 {
			if check(conn) != nil {
				failed++
			}
		}
		if bad.Load() != before || failed != 0 {
			t.Errorf("after ejection: the broken server got %d more calls, %d of 30 failed; want it ejected (good servers: %d, %d calls)",
				bad.Load()-before, failed, good1.Load(), good2.Load())
		}
	})

	// The three servers of rr (port 9091) and lr (port 9092); on lr, .56 is slow.
	var rr, lr [3]*atomic.Int64
	for i, ip := range []string{"127.0.171.56", "127.0.171.57", "127.0.171.58"} {
		rr[i] = behaving(t, ip+":9091", fine)
		slow := i == 0
		lr[i] = behaving(t, ip+":9092", func(context.Context, int64) error {
			if slow {
				time.Sleep(200 * time.Millisecond)
			}
			return nil
		})
	}

	t.Run("ROUND_ROBIN", func(t *testing.T) {
		conn := client(t, ads, "rr.default.svc.cluster.local:9091")
		// Connect, and call until every server has answered: gRPC's round robin takes only
		// READY subchannels, and on a loaded machine the others may still be connecting
		// after the first call. Then count from zero.
		testutil.Eventually(t, 10*time.Second, "every round-robin server answered a call", func() bool {
			if err := check(conn); err != nil {
				t.Fatal(err)
			}
			return rr[0].Load() > 0 && rr[1].Load() > 0 && rr[2].Load() > 0
		})
		var before [3]int64
		for i := range rr {
			before[i] = rr[i].Load()
		}
		const n = 90
		for range n {
			if err := check(conn); err != nil {
				t.Fatal(err)
			}
		}
		for i := range rr {
			if d := rr[i].Load() - before[i]; d < n/3-3 || d > n/3+3 {
				t.Errorf("server %d got %d of %d sequential calls, want %d ± 3 (round robin)", i, d, n, n/3)
			}
		}
	})

	t.Run("LEAST_REQUEST", func(t *testing.T) {
		// 12 callers at once for 2 s: the slow server holds its calls longer, so least
		// request sends it far fewer than the third round robin would.
		conn := client(t, ads, "lr.default.svc.cluster.local:9092")
		if err := check(conn); err != nil {
			t.Fatal(err)
		}
		var before [3]int64
		for i := range lr {
			before[i] = lr[i].Load()
		}
		var wg sync.WaitGroup
		var failed atomic.Int64
		stop := time.Now().Add(2 * time.Second)
		for range 12 {
			wg.Go(func() {
				for time.Now().Before(stop) {
					if check(conn) != nil {
						failed.Add(1)
					}
				}
			})
		}
		wg.Wait()
		var d [3]int64
		total := int64(0)
		for i := range lr {
			d[i] = lr[i].Load() - before[i]
			total += d[i]
		}
		if failed.Load() != 0 || total == 0 || float64(d[0]) > 0.22*float64(total) {
			t.Errorf("calls per server %v (slow first), %d failed: want the slow one under 22 %% of %d (least request; round robin gives it a third)", d, failed.Load(), total)
		}
		t.Logf("LEAST_REQUEST: calls per server %v (the first is slow)", d)
	})
}
