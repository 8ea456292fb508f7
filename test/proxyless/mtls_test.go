package proxyless

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	xdscreds "google.golang.org/grpc/credentials/xds"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/xds"

	"github.com/lucid-mesh/lucid/internal/agent/grpcxds"
	"github.com/lucid-mesh/lucid/internal/cli"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

// grpcAgent runs `lucid grpc-agent` for a workload until the test ends and returns its
// bootstrap once the certificate files are written.
func grpcAgent(t *testing.T, configDir, ads, caAddr, workload, sa, ip string, extra ...string) (bootstrap []byte, dir string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), workload)
	ctx, cancel := context.WithCancel(context.Background())
	root := cli.NewRoot()
	var errOut testutil.Buffer
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"grpc-agent", "--config-dir", configDir, "--discovery-address", ads, "--ca-address", caAddr,
		"--workload", workload, "--service-account", sa, "--ip", ip, "--dir", out, "--refresh-interval", "1s"}, extra...))
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("lucid grpc-agent %s: %v", workload, err)
		}
	})
	testutil.EventuallyWhy(t, 10*time.Second, "lucid grpc-agent "+workload+" writing its certificate", func() (bool, string) {
		select {
		case err := <-done:
			done <- err // for the cleanup
			t.Fatalf("lucid grpc-agent %s ended: %v\n%s", workload, err, errOut.String())
		default:
		}
		_, err := os.Stat(filepath.Join(out, grpcxds.CertChainFile))
		return err == nil, "its output:\n" + errOut.String()
	})
	b, err := os.ReadFile(filepath.Join(out, grpcxds.BootstrapFile))
	if err != nil {
		t.Fatal(err)
	}
	return b, out
}

// Mutual TLS as Istio serves it to proxyless gRPC: `lucid grpc-agent` writes each
// workload's bootstrap and certificate files from the mesh CA; an xds.NewGRPCServer with
// xds credentials gets its server-side listener with a STRICT mutual TLS chain, a
// client with xds credentials gets a cluster whose TLS comes from the certificate
// provider, and they talk with each other's SPIFFE identity; a client that sends
// plaintext is refused.
func TestProxylessMutualTLS(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mesh")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// The example's secure service (its STRICT PeerAuthentication included), in a
	// directory of its own: the CA keeps its state beside the config directory.
	secure, err := os.ReadFile(example + "/secure.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secure.yaml"), secure, 0o600); err != nil {
		t.Fatal(err)
	}
	const caAddr = "127.0.171.40:15012"
	ads, _ := startDiscoveryOn(t, dir, "127.0.171.40:0", "", caAddr)
	// The server's certificate lives 4 s: the agent renews it at about 2 s.
	serverBoot, serverDir := grpcAgent(t, dir, ads, caAddr, "secure-v1", "secure", "127.0.171.41", "--secret-ttl", "4s")
	clientBoot, _ := grpcAgent(t, dir, ads, caAddr, "client", "client", "127.0.171.42")

	// The server: xds.NewGRPCServer with xds credentials, recording its peers.
	serverCreds, err := xdscreds.NewServerCredentials(xdscreds.ServerOptions{FallbackCreds: insecure.NewCredentials()})
	if err != nil {
		t.Fatal(err)
	}
	peers := make(chan credentials.AuthInfo, 10)
	gs, err := xds.NewGRPCServer(grpc.Creds(serverCreds), xds.BootstrapContentsForTesting(serverBoot),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if p, ok := peer.FromContext(ctx); ok {
				select {
				case peers <- p.AuthInfo:
				default:
				}
			}
			return h(ctx, req)
		}))
	if err != nil {
		t.Fatalf("xds.NewGRPCServer: %v", err)
	}
	healthpb.RegisterHealthServer(gs, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.171.41:9090")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)

	resolver, err := xds.NewXDSResolverWithConfigForTesting(clientBoot)
	if err != nil {
		t.Fatalf("grpc-go does not accept the bootstrap lucid grpc-agent wrote: %v", err)
	}
	clientCreds, err := xdscreds.NewClientCredentials(xdscreds.ClientOptions{FallbackCreds: insecure.NewCredentials()})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("xds:///secure.default.svc.cluster.local:9090", grpc.WithTransportCredentials(clientCreds), grpc.WithResolvers(resolver))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := check(conn); err != nil {
		t.Fatalf("RPC with xds credentials under STRICT mutual TLS: %v", err)
	}
	select {
	case ai := <-peers:
		tlsInfo, ok := ai.(credentials.TLSInfo)
		if !ok || len(tlsInfo.State.PeerCertificates) == 0 {
			t.Fatalf("the server saw %T %v, want a TLS peer with a certificate", ai, ai)
		}
		uris := tlsInfo.State.PeerCertificates[0].URIs
		if len(uris) != 1 || uris[0].String() != "spiffe://cluster.local/ns/default/sa/client" {
			t.Errorf("the client's identity at the server: %v, want spiffe://cluster.local/ns/default/sa/client", uris)
		}
	default:
		t.Fatal("the server recorded no peer")
	}

	// Rotation: once the first server certificate has expired, a new connection still
	// succeeds, with the renewed certificate the agent wrote and gRPC reread.
	first := leafOf(t, serverDir)
	time.Sleep(time.Until(first.NotAfter) + 500*time.Millisecond)
	conn2, err := grpc.NewClient("xds:///secure.default.svc.cluster.local:9090", grpc.WithTransportCredentials(clientCreds), grpc.WithResolvers(resolver))
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	var server peer.Peer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(conn2).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true), grpc.Peer(&server)); err != nil {
		t.Fatalf("RPC after the first server certificate expired: %v", err)
	}
	if ti, ok := server.AuthInfo.(credentials.TLSInfo); !ok || len(ti.State.PeerCertificates) == 0 || !ti.State.PeerCertificates[0].NotAfter.After(first.NotAfter) {
		t.Errorf("after the renewal the server presented %v, want a certificate newer than the first", server.AuthInfo)
	}

	// A plaintext client (no xds credentials) is refused by the STRICT server.
	plainResolver, err := xds.NewXDSResolverWithConfigForTesting(clientBoot)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := grpc.NewClient("xds:///secure.default.svc.cluster.local:9090", grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithResolvers(plainResolver))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	ctx, cancel = context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(plain).Check(ctx, &healthpb.HealthCheckRequest{})
	if code := status.Code(err); code != codes.Unavailable && code != codes.DeadlineExceeded {
		t.Errorf("a plaintext client under STRICT: %v, want the connection refused (UNAVAILABLE)", err)
	}
}

// leafOf is the workload certificate in an agent's directory.
func leafOf(t *testing.T, dir string) *x509.Certificate {
	t.Helper()
	c, err := tls.LoadX509KeyPair(filepath.Join(dir, grpcxds.CertChainFile), filepath.Join(dir, grpcxds.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}
