package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"

	"github.com/lucid-mesh/lucid/internal/controlplane/ca"
)

// CAOptions configure the mesh CA of local mode (istiod's Citadel on its TLS port 15012):
// workloads authenticate with the token `lucid up` handed them (the tokens file) or with
// the mesh certificate they already hold, and get their SPIFFE certificate.
type CAOptions struct {
	// Addr is the TLS gRPC address (--ca-addr, default 127.0.0.1:15012); "" disables the CA.
	Addr string
	// StateDir keeps the CA (istio-ca/ with a 0600 key, or a plugged-in cacerts/), the
	// roots agents verify the CA with (root-cert.pem) and the workload tokens (default
	// StateDirFor(ConfigDir)).
	StateDir string
	// TokensFile is the local workload tokens file (default <StateDir>/workload-tokens.json).
	TokensFile string
	// CertTTL is a workload certificate's default lifetime (Istio's
	// DEFAULT_WORKLOAD_CERT_TTL, 24 h); MaxCertTTL the longest one granted
	// (MAX_WORKLOAD_CERT_TTL, 90 days).
	CertTTL, MaxCertTTL time.Duration
}

// StateDirFor is local mode's state directory beside the config directory dir:
// examples/bookinfo-lite keeps its state in examples/.bookinfo-lite.lucid.
func StateDirFor(dir string) string {
	dir = filepath.Clean(dir)
	return filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+".lucid")
}

// RootCertFile and TokensFile are the state directory's files `lucid up` hands to sidecars.
const (
	RootCertFile   = "root-cert.pem"
	TokensFileName = "workload-tokens.json"
)

// caServes reports whether this control plane runs the CA, so workloads have
// certificates and the configuration may ask for mutual TLS.
func caServes(o Options) bool { return o.CA.Addr != "" && !o.Kube.Enabled }

// startCA loads (or creates) the CA, writes its roots to the state directory and serves
// CreateCertificate on o.CA.Addr until ctx ends. The returned stop waits for the server.
func startCA(ctx context.Context, o Options, mesh *meshv1alpha1.MeshConfig, log *slog.Logger) (stop func(), err error) {
	co := o.CA
	if !caServes(o) {
		return func() {}, nil // Kubernetes: not wired yet (kubeca)
	}
	if co.StateDir == "" {
		if o.ConfigDir == "" {
			return nil, errors.New("--ca-addr needs --state-dir or --config-dir")
		}
		co.StateDir = StateDirFor(o.ConfigDir)
	}
	if co.TokensFile == "" {
		co.TokensFile = filepath.Join(co.StateDir, TokensFileName)
	}
	if err := os.MkdirAll(co.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("--state-dir: %w", err)
	}
	td := mesh.GetTrustDomain()
	l, err := ca.Load(ctx, ca.DirStore{Dir: co.StateDir}, ca.LoadOptions{TrustDomain: td})
	if err != nil {
		return nil, err
	}
	c, err := ca.New(l.Authority, ca.Options{TrustDomain: td, DefaultTTL: co.CertTTL, MaxTTL: co.MaxCertTTL})
	if err != nil {
		return nil, err
	}
	host, _, err := net.SplitHostPort(co.Addr)
	if err != nil {
		return nil, fmt.Errorf("--ca-addr %q: %w", co.Addr, err)
	}
	var ips []net.IP
	if ip := net.ParseIP(host); ip != nil {
		ips = append(ips, ip)
	}
	r, err := c.ServingRotator(ca.ServingOptions{DNSNames: append(ca.ServerNames("istio-system"), "localhost"), IPs: ips, Logger: log})
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", co.Addr)
	if err != nil {
		return nil, fmt.Errorf("CA listener: %w", err)
	}
	// The roots are written once the port is bound: whoever sees the file can reach the CA.
	rootFile := filepath.Join(co.StateDir, RootCertFile)
	if err := os.WriteFile(rootFile, c.RootsPEM(), 0o600); err != nil {
		_ = lis.Close()
		return nil, fmt.Errorf("CA roots: %w", err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(c.ServerTLSConfig(r))))
	ca.NewService(c, log, ca.ClientCerts{TrustDomain: td}, ca.NewLocalTokens(co.TokensFile, td)).Register(srv)
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.Run(rctx) }()
	go func() { defer wg.Done(); _ = srv.Serve(lis) }()
	log.Info("mesh CA serving", "address", lis.Addr().String(), "trust-domain", c.TrustDomain(), "origin", l.Origin.String(), "ca", l.Where, "roots", rootFile)
	return func() {
		cancel()
		srv.Stop()
		wg.Wait()
	}, nil
}
