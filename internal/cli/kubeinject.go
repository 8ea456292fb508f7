package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/lucid-mesh/lucid/internal/kube/inject"
	"github.com/lucid-mesh/lucid/internal/kube/install"
	"github.com/lucid-mesh/lucid/internal/version"
)

func init() { register(newKubeInjectCmd) }

func newKubeInjectCmd() *cobra.Command {
	var (
		in, out string
		cfg     inject.Config
		hold    bool
	)
	cmd := &cobra.Command{
		Use:   "kube-inject -f FILE [-o FILE]",
		Short: "Inject the Lucid sidecar into Kubernetes manifests, offline (like istioctl kube-inject)",
		Long: `Inject the Lucid sidecar into the pod templates of the Pods, Deployments, StatefulSets,
DaemonSets, ReplicaSets, ReplicationControllers, Jobs and CronJobs of a multi-document YAML file,
exactly as the admission webhook would (Istio's injector: the istio-proxy and istio-init
containers, probes rewritten to the status port with the originals in ISTIO_KUBE_APP_PROBERS).
Every other document passes through unchanged. Namespace labels are not consulted; pod labels
and annotations (sidecar.istio.io/inject: "false", ...) are. What was not injected, and why, is
reported on standard error. Pipe the result to kubectl apply -f -.`,
		Example: `  lucid kube-inject -f examples/kubernetes/productpage.yaml
  lucid kube-inject -f examples/kubernetes/productpage.yaml -o productpage-injected.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if in == "" {
				return fmt.Errorf("-f is required (a file, or - for standard input)")
			}
			var data []byte
			var err error
			if in == "-" {
				data, err = io.ReadAll(cmd.InOrStdin())
			} else {
				data, err = os.ReadFile(in)
			}
			if err != nil {
				return fmt.Errorf("read %s: %w", in, err)
			}
			cfg.HoldApplicationUntilProxyStarts = hold
			result, reports, err := inject.Manifests(cfg, data)
			if err != nil {
				return fmt.Errorf("%s: %w", in, err)
			}
			stderr := cmd.ErrOrStderr()
			for _, r := range reports {
				if !r.Injected {
					fmt.Fprintf(stderr, "lucid kube-inject: %s: not injected: %s\n", r.Object, r.Reason)
				}
				for _, w := range r.Warnings {
					fmt.Fprintf(stderr, "lucid kube-inject: %s: warning: %s\n", r.Object, w)
				}
			}
			if out == "" || out == "-" {
				_, err = cmd.OutOrStdout().Write(result)
				return err
			}
			if err := os.WriteFile(out, result, 0o644); err != nil { //nolint:gosec // G703: -o is the user's own output path
				return fmt.Errorf("write %s: %w", out, err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&in, "filename", "f", "", "the manifests to inject (- for standard input)")
	f.StringVarP(&out, "output", "o", "", "where to write the result (default standard output)")
	f.StringVar(&cfg.Image, "image", install.DefaultImage(version.String()), "the lucid image for istio-proxy and istio-init")
	f.StringVar(&cfg.DiscoveryAddress, "discovery-address", inject.DefaultDiscoveryAddress, "the control plane's ADS address, as sidecars reach it")
	f.StringVar(&cfg.Revision, "revision", "default", "the control plane revision (istio.io/rev)")
	f.StringVar(&cfg.TrustDomain, "trust-domain", "cluster.local", "the mesh's trust domain (meshConfig.trustDomain): injected sidecars ask for identities in it")
	f.BoolVar(&hold, "hold-application-until-proxy-starts", false, "start the proxy first and hold the app until it is ready (mesh default)")
	return cmd
}
