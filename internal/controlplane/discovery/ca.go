package discovery

import (
	"cmp"
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
	"k8s.io/client-go/dynamic"

	"github.com/lucid-mesh/lucid/internal/controlplane/ads"
	"github.com/lucid-mesh/lucid/internal/controlplane/ca"
	"github.com/lucid-mesh/lucid/internal/controlplane/ca/kubeca"
	"github.com/lucid-mesh/lucid/internal/kube/install"
	"github.com/lucid-mesh/lucid/internal/kube/kubeclient"
)

// CAOptions configure the mesh CA (istiod's Citadel on its TLS port 15012, which also
// serves xDS): workloads authenticate with the mesh certificate they already hold, or
// with the token `lucid up` handed them (local mode: the tokens file), or with their
// service-account token (Kubernetes: TokenReview, audience istio-ca), and get their
// SPIFFE certificate.
type CAOptions struct {
	// Addr is the TLS gRPC address (--ca-addr, default 127.0.0.1:15012); "" disables the CA.
	Addr string
	// StateDir keeps the CA (istio-ca/ with a 0600 key, or a plugged-in cacerts/), the
	// roots agents verify the CA with (root-cert.pem) and the workload tokens (default
	// StateDirFor(ConfigDir)).
	StateDir string
	// TokensFile is the local workload tokens file (default <StateDir>/workload-tokens.json).
	TokensFile string
	// Hosts are more names (DNS names or IPs) for the TLS port's certificate: the
	// address sidecars dial when it is not the Service's name (--ca-hosts).
	Hosts []string
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
func caServes(o Options) bool { return o.CA.Addr != "" }

// startCA loads (or creates) the CA and serves, on o.CA.Addr over TLS, CreateCertificate
// and xDS (only a proxy's own configuration: xdsauth.go) on srv's services until ctx ends.
// Local mode keeps the CA in the state directory and writes its roots there; Kubernetes
// keeps it in Istio's Secrets and publishes the roots in every namespace. The returned stop
// waits for the server.
func startCA(ctx context.Context, o Options, mesh *meshv1alpha1.MeshConfig, srv *ads.Server, log *slog.Logger) (stop func(), err error) {
	co := o.CA
	if !caServes(o) {
		return func() {}, nil
	}
	td := mesh.GetTrustDomain()
	auths := []ca.Authenticator{ca.ClientCerts{TrustDomain: td}}
	var (
		store    ca.Store
		names    []string
		rootFile string
		dyn      dynamic.Interface
	)
	if o.Kube.Enabled {
		clients := o.Kube.Clients
		if clients == nil {
			if clients, _, err = kubeclient.Load(o.Kube.Kubeconfig); err != nil {
				return nil, fmt.Errorf("--ca-addr: %w", err)
			}
		}
		dyn = clients.Dynamic
		ns := orEnv(o.Webhook.Namespace, "POD_NAMESPACE", install.DefaultNamespace)
		store = kubeca.Secrets{Client: dyn, Namespace: ns}
		auths = append(auths, ca.KubeTokens{Reviewer: kubeca.TokenReviewer{Client: dyn}, TrustDomain: td})
		names = ca.ServerNames(ns)
	} else {
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
		store = ca.DirStore{Dir: co.StateDir}
		auths = append(auths, ca.NewLocalTokens(co.TokensFile, td))
		names = append(ca.ServerNames("istio-system"), "localhost")
		rootFile = filepath.Join(co.StateDir, RootCertFile)
	}
	l, err := ca.Load(ctx, store, ca.LoadOptions{TrustDomain: td})
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
	for _, h := range append([]string{host}, co.Hosts...) {
		if ip := net.ParseIP(h); ip != nil && !ip.IsUnspecified() {
			ips = append(ips, ip)
		} else if ip == nil && h != "" {
			names = append(names, h)
		}
	}
	r, err := c.ServingRotator(ca.ServingOptions{DNSNames: names, IPs: ips, Logger: log})
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", co.Addr)
	if err != nil {
		return nil, fmt.Errorf("CA listener: %w", err)
	}
	// The roots are written once the port is bound: whoever sees the file can reach the CA.
	if rootFile != "" {
		if err := os.WriteFile(rootFile, c.RootsPEM(), 0o600); err != nil {
			_ = lis.Close()
			return nil, fmt.Errorf("CA roots: %w", err)
		}
	}
	// On srv's services, so both ports have them; the CA refuses calls without TLS.
	ca.NewService(c, log, auths...).Register(srv)
	srv.Authorize = authorizeXDS(auths, log.With("component", "ads"))
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { r.Run(rctx) })
	wg.Go(func() {
		if err := srv.Serve(rctx, lis, grpc.Creds(credentials.NewTLS(c.ServerTLSConfig(r)))); err != nil {
			log.Error("the control plane's TLS port stopped", "address", lis.Addr().String(), "error", err)
		}
	})
	if dyn != nil {
		pub := &kubeca.RootPublisher{Client: dyn, Roots: c.RootsPEM, Log: log.With("component", "ca")}
		wg.Go(func() { _ = pub.Run(rctx) })
	}
	log.Info("mesh CA serving", "address", lis.Addr().String(), "trust-domain", c.TrustDomain(), "origin", l.Origin.String(), "ca", l.Where, "roots", cmp.Or(rootFile, "configmap "+kubeca.RootCertConfigMap))
	return func() {
		cancel()
		wg.Wait()
	}, nil
}

// injectedPort is the control-plane port injected sidecars dial: the TLS port (xDS and
// their certificates) when the CA serves, else the plaintext one (no workload identity).
func injectedPort(o Options) int {
	if caServes(o) {
		return install.SecurePort
	}
	return install.GRPCPort
}
