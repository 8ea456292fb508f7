package proxyless

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/xds"

	"github.com/lucid-mesh/lucid/internal/cli"
	"github.com/lucid-mesh/lucid/internal/controlplane/discovery"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// grpc-go's xDS client keeps process-wide goroutines (its client pool and the
		// callback serializers) after every channel closed.
		goleak.IgnoreAnyFunction("google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run"),
		goleak.IgnoreAnyFunction("google.golang.org/grpc/internal/xds/clients/xdsclient.(*xdsChannel).run"),
		goleak.IgnoreTopFunction("google.golang.org/grpc/internal/xds/clients/grpctransport.(*grpcTransport).CreateStreamingCall"),
	)
}

const example = "../../examples/grpc-proxyless"

// echoServer is one version of the echo service: a plain gRPC server (health service) that
// counts the calls it answers.
func echoServer(t *testing.T, addr string) *atomic.Int64 {
	t.Helper()
	return behaving(t, addr, fine)
}

// startDiscovery runs `lucid discovery --config-dir examples/grpc-proxyless` in process and
// returns its ADS and debug addresses.
func startDiscovery(t *testing.T) (ads, debug string) {
	t.Helper()
	return startDiscoveryOn(t, example, "127.0.171.20:0", "127.0.171.20:15014", "")
}

// startDiscoveryOn runs `lucid discovery --config-dir dir` in process with ADS on adsAddr,
// the debug port on debug ("": none) and the CA on caAddr ("": none) and returns the ADS
// address.
func startDiscoveryOn(t *testing.T, dir, adsAddr, debug, caAddr string) (ads, debugAddr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- discovery.Run(ctx, discovery.Options{
			ConfigDir: dir, GRPCAddr: adsAddr, DebugAddr: debug, CA: discovery.CAOptions{Addr: caAddr},
			Logger: slog.New(slog.DiscardHandler), Ready: func(a string) { ready <- a },
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("discovery: %v", err)
		}
	})
	select {
	case ads = <-ready:
	case err := <-done:
		t.Fatalf("discovery: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("discovery did not publish a configuration within 10s")
	}
	return ads, debug
}

// client dials xds:///target with grpc-go's xDS resolver and the example's bootstrap,
// pointed at ads.
func client(t *testing.T, ads, target string) *grpc.ClientConn {
	t.Helper()
	raw, err := os.ReadFile(example + "/bootstrap.json")
	if err != nil {
		t.Fatal(err)
	}
	var b map[string]any
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatalf("bootstrap.json: %v", err)
	}
	b["xds_servers"].([]any)[0].(map[string]any)["server_uri"] = ads
	raw, _ = json.Marshal(b)
	resolver, err := xds.NewXDSResolverWithConfigForTesting(raw)
	if err != nil {
		t.Fatalf("grpc-go does not accept the example's bootstrap: %v", err)
	}
	conn, err := grpc.NewClient("xds:///"+target, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithResolvers(resolver))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func check(conn *grpc.ClientConn, md ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if len(md) > 0 {
		ctx = metadata.AppendToOutgoingContext(ctx, md...)
	}
	_, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	return err
}

// The example end to end: grpc-go clients (the FQDN target and the short name a client in
// the namespace uses) get their listeners, routes, clusters and endpoints from Lucid by
// name and route as the VirtualService says: the 80/20 split over the DestinationRule's
// subsets, the header match to v2, the fault abort with its gRPC status; `lucid
// proxy-status` lists the gRPC clients with no NACK.
func TestProxylessGRPCExample(t *testing.T) {
	v1 := echoServer(t, "127.0.171.21:9090")
	v2 := echoServer(t, "127.0.171.22:9090")
	ads, debug := startDiscovery(t)

	for _, target := range []string{"echo.default.svc.cluster.local:9090", "echo:9090"} {
		conn := client(t, ads, target)
		before1, before2 := v1.Load(), v2.Load()
		const n = 100
		for i := range n {
			if err := check(conn); err != nil {
				t.Fatalf("%s: RPC %d: %v", target, i, err)
			}
		}
		d1, d2 := v1.Load()-before1, v2.Load()-before2
		if d1+d2 != n || d1 < 60 || d2 < 5 {
			t.Errorf("%s: v1 got %d, v2 %d of %d calls, want about 80/20", target, d1, d2, n)
		}

		before1, before2 = v1.Load(), v2.Load()
		for range 10 {
			if err := check(conn, "x-user", "tester"); err != nil {
				t.Fatalf("%s: tester RPC: %v", target, err)
			}
		}
		if d1, d2 := v1.Load()-before1, v2.Load()-before2; d1 != 0 || d2 != 10 {
			t.Errorf("%s: x-user: tester reached v1 %d, v2 %d times, want v2 only", target, d1, d2)
		}

		before1 = v1.Load()
		err := check(conn, "x-fault", "abort")
		if status.Code(err) != codes.Unavailable || v1.Load() != before1 {
			t.Errorf("%s: x-fault: abort gave %v (and reached v1 %d times), want UNAVAILABLE from the client's fault filter", target, err, v1.Load()-before1)
		}
	}

	root := cli.NewRoot()
	var out, errOut bytes.Buffer
	root.SetArgs([]string{"proxy-status", "--discovery-debug", debug})
	root.SetOut(&out)
	root.SetErr(&errOut)
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("lucid proxy-status: %v\n%s", err, errOut.String())
	}
	if !bytes.Contains(out.Bytes(), []byte("echo-client")) || bytes.Contains(out.Bytes(), []byte("NACK")) {
		t.Errorf("lucid proxy-status does not list the gRPC clients as synced:\n%s", out.String())
	}
	t.Logf("lucid proxy-status:\n%s", out.String())

	// One client: no admin API to diff against, so the control plane's record of what
	// the client acknowledged, per type.
	out.Reset()
	errOut.Reset()
	root = cli.NewRoot()
	root.SetArgs([]string{"proxy-status", "echo-client", "--discovery-debug", debug})
	root.SetOut(&out)
	root.SetErr(&errOut)
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("lucid proxy-status echo-client: %v\n%s", err, errOut.String())
	}
	for _, want := range []string{"proxyless gRPC client", "cannot be read back", "Listeners  SYNCED: version", "Routes     SYNCED", "Clusters   SYNCED", "Endpoints  SYNCED"} {
		if !bytes.Contains(out.Bytes(), []byte(want)) {
			t.Errorf("lucid proxy-status echo-client lacks %q:\n%s", want, out.String())
		}
	}
	t.Logf("lucid proxy-status echo-client:\n%s", out.String())
}
