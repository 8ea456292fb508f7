package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lucid-mesh/lucid/internal/install"
	"github.com/lucid-mesh/lucid/internal/version"
)

func init() { register(newInstallCmd) }

func newInstallCmd() *cobra.Command {
	var (
		o     install.Options
		apply bool
	)
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Print the Kubernetes manifests that install Lucid (Istio CRDs, RBAC, discovery, injection webhook)",
		Long: `Print everything Lucid needs on a Kubernetes cluster, in apply order: the Istio CRDs (from
the istio.io/api module Lucid is built with), the istio-system namespace, the lucid-discovery
service account and RBAC, the lucid-discovery Deployment and Service (ports 15010 grpc-xds,
15014 http-monitoring, 443 -> 15017 https-webhook) and the MutatingWebhookConfiguration with
Istio's four injection webhooks.

  lucid install | kubectl apply --server-side -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if apply {
				return errors.New("install --apply is not implemented yet (Lucid has no Kubernetes client so far); pipe the output to kubectl apply --server-side -f -")
			}
			out, err := install.Render(o)
			if err != nil {
				return err
			}
			if _, err := cmd.OutOrStdout().Write(out); err != nil {
				return fmt.Errorf("install: %w", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Image, "image", install.DefaultImage(version.String()), "the lucid image to run")
	f.StringVar(&o.Namespace, "namespace", install.DefaultNamespace, "the control plane's namespace")
	f.StringVar(&o.Revision, "revision", "default", "the control plane revision (istio.io/rev)")
	f.Int32Var(&o.Replicas, "replicas", 1, "discovery replicas")
	f.BoolVar(&o.NoCRDs, "skip-crds", false, "leave the Istio CRDs out")
	f.BoolVar(&apply, "apply", false, "apply the manifests to the current cluster (not implemented yet)")
	return cmd
}
