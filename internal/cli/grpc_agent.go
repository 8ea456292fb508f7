package cli

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/lucid-mesh/lucid/internal/agent/grpcxds"
	"github.com/lucid-mesh/lucid/internal/agent/identity"
	"github.com/lucid-mesh/lucid/internal/controlplane/ca"
	"github.com/lucid-mesh/lucid/internal/controlplane/discovery"
	"github.com/lucid-mesh/lucid/internal/pki/spiffe"
)

func init() { register(newGRPCAgentCmd) }

type grpcAgentFlags struct {
	discovery, workload, namespace, ip, dir, configDir string
	caAddr, caRoot, tokenFile, serviceAccount, td      string
	opts                                               grpcxds.Options
}

func newGRPCAgentCmd() *cobra.Command {
	var f grpcAgentFlags
	cmd := &cobra.Command{
		Use:   "grpc-agent",
		Short: "Write a proxyless gRPC application's xDS bootstrap and keep its mesh certificate files fresh",
		Long: `Istio's grpc-agent for an application that speaks xDS itself (grpc-go, grpc-java, grpc-cpp;
no sidecar). It writes <dir>/bootstrap.json (point GRPC_XDS_BOOTSTRAP at it): the control
plane's ADS address, the node metadata GENERATOR "grpc" that selects gRPC's form of the
configuration, Istio's server listener name template (for xds.NewGRPCServer) and, with a CA,
the certificate provider "default" (file_watcher) over <dir>/cert-chain.pem, key.pem and
root-cert.pem. Then it requests the workload certificate from the mesh CA and rewrites the
files at every renewal until stopped; gRPC's xds credentials reread them.

Local mode (--config-dir, the directory given to lucid discovery or lucid up): the CA is
discovery's on 127.0.0.1:15012 and the agent issues the workload's token itself, as lucid up
does for a sidecar. Elsewhere give --ca-address, --ca-root-cert and --ca-token-file.
Without a CA only the bootstrap is written (plaintext).`,
		Example: `  lucid grpc-agent --config-dir examples/grpc-proxyless --workload echo-v1 --ip 127.0.171.21 --dir /tmp/echo-v1
  GRPC_XDS_BOOTSTRAP=/tmp/echo-v1/bootstrap.json ./echo-server`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := f.options(cmd)
			if err != nil {
				return err
			}
			return grpcxds.Run(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.discovery, "discovery-address", "127.0.0.1:15010", "the control plane's plaintext ADS address")
	fl.StringVar(&f.workload, "workload", "", "the workload's name (its WorkloadEntry's); required")
	fl.StringVar(&f.namespace, "namespace", "default", "the workload's namespace")
	fl.StringVar(&f.ip, "ip", "", "the workload's address (its WorkloadEntry's); required")
	fl.StringVar(&f.dir, "dir", "", "where bootstrap.json and the certificate files go; required")
	fl.StringVar(&f.configDir, "config-dir", "", "local mode: the mesh's config directory (its state directory holds the CA's roots and tokens)")
	fl.StringVar(&f.caAddr, "ca-address", "", "the mesh CA (default with --config-dir: 127.0.0.1:15012; else none: bootstrap only)")
	fl.StringVar(&f.caRoot, "ca-root-cert", "", "PEM roots that verify the CA (default with --config-dir: its state directory's root-cert.pem)")
	fl.StringVar(&f.tokenFile, "ca-token-file", "", "file holding the workload's credential, read at each request (Kubernetes: /var/run/secrets/tokens/istio-token)")
	fl.StringVar(&f.serviceAccount, "service-account", "default", "the workload's service account")
	fl.StringVar(&f.td, "trust-domain", "cluster.local", "the mesh's trust domain")
	fl.DurationVar(&f.opts.TTL, "secret-ttl", identity.DefaultTTL, "lifetime of the workload certificate asked for")
	fl.DurationVar(&f.opts.Bootstrap.Refresh, "refresh-interval", grpcxds.DefaultRefresh, "how often gRPC rereads the certificate files")
	return cmd
}

// options checks the flags and turns them into grpcxds.Options; in local mode it issues
// the workload's token.
func (f *grpcAgentFlags) options(cmd *cobra.Command) (grpcxds.Options, error) {
	o := f.opts
	switch {
	case f.workload == "":
		return o, errors.New("--workload is required: the workload's name, as in its WorkloadEntry")
	case f.dir == "":
		return o, errors.New("--dir is required: where bootstrap.json and the certificate files go")
	}
	ip, err := netip.ParseAddr(f.ip)
	if err != nil {
		return o, fmt.Errorf("--ip %q: the workload's address is required: %w", f.ip, err)
	}
	o.Dir, o.Logger = f.dir, slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
	o.Bootstrap.Discovery, o.Bootstrap.Workload, o.Bootstrap.Namespace, o.Bootstrap.IP = f.discovery, f.workload, f.namespace, ip
	o.ID = spiffe.ID{TrustDomain: f.td, Namespace: f.namespace, ServiceAccount: f.serviceAccount}
	o.CAAddress = f.caAddr
	rootFile := f.caRoot
	if f.configDir != "" {
		state := discovery.StateDirFor(f.configDir)
		if o.CAAddress == "" {
			o.CAAddress = fmt.Sprintf("127.0.0.1:%d", ca.DefaultPort)
		}
		if rootFile == "" {
			rootFile = filepath.Join(state, discovery.RootCertFile)
		}
		if f.tokenFile == "" {
			tok, err := ca.IssueLocalToken(filepath.Join(state, discovery.TokensFileName), f.namespace+"/"+f.workload, f.namespace, f.serviceAccount)
			if err != nil {
				return o, fmt.Errorf("workload token (is lucid discovery running on %s with its CA?): %w", f.configDir, err)
			}
			o.Token = identity.StaticToken(tok)
		}
	}
	if o.CAAddress == "" {
		return o, nil
	}
	if f.tokenFile != "" {
		o.Token = identity.FileToken(f.tokenFile)
	}
	if o.Token == nil {
		return o, errors.New("--ca-address needs --ca-token-file (or --config-dir in local mode): the workload's credential")
	}
	if rootFile == "" {
		return o, errors.New("--ca-address needs --ca-root-cert: the roots that verify the CA")
	}
	pem, err := os.ReadFile(rootFile)
	if err != nil {
		return o, fmt.Errorf("--ca-root-cert: %w", err)
	}
	o.CARoots = x509.NewCertPool()
	if !o.CARoots.AppendCertsFromPEM(pem) {
		return o, fmt.Errorf("--ca-root-cert %s: no PEM certificate in it", rootFile)
	}
	return o, nil
}
