package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lucid-mesh/lucid/internal/kube/install"
	"github.com/lucid-mesh/lucid/internal/kube/kubeapply"
	"github.com/lucid-mesh/lucid/internal/kube/kubeclient"
	"github.com/lucid-mesh/lucid/internal/version"
)

func init() { register(newInstallCmd) }

func newInstallCmd() *cobra.Command {
	var (
		o          install.Options
		apply      bool
		kubeconfig string
	)
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Print the Kubernetes manifests that install Lucid (Istio CRDs, RBAC, discovery, injection webhook)",
		Long: `Print everything Lucid needs on a Kubernetes cluster, in apply order: the Istio CRDs (from
the istio.io/api module Lucid is built with), the istio-system namespace, the lucid-discovery
service account and RBAC, the lucid-discovery Deployment and Service (ports 15010 grpc-xds,
15014 http-monitoring, 443 -> 15017 https-webhook) and the MutatingWebhookConfiguration with
Istio's four injection webhooks. Apply them with kubectl apply --server-side.

With --apply, Lucid applies them itself (server-side apply, field manager lucid-install,
taking over conflicting fields) to the cluster found as lucid discovery --kubernetes finds it
(--kubeconfig, $KUBECONFIG, a Pod's service account, ~/.kube/config, in that order); it
prints one line per object (created, configured or unchanged), and applying again changes
nothing.`,
		Example: `  lucid install > lucid-install.yaml   # then: kubectl apply --server-side -f lucid-install.yaml
  lucid install --apply                # the same, applied by lucid to the cluster $KUBECONFIG names`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := install.Render(o)
			if err != nil {
				return err
			}
			if apply {
				return applyInstall(cmd, out, kubeconfig)
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
	f.BoolVar(&apply, "apply", false, "apply the manifests to the cluster (server-side apply) instead of printing them")
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file for --apply (default: $KUBECONFIG, in-cluster, ~/.kube/config)")
	return cmd
}

// installFieldManager owns the fields `lucid install --apply` sets.
const installFieldManager = "lucid-install"

func applyInstall(cmd *cobra.Command, manifests []byte, kubeconfig string) error {
	cfg, _, err := kubeclient.Config(kubeconfig)
	if err != nil {
		return fmt.Errorf("install --apply: %w", err)
	}
	results, err := kubeapply.ApplyWith(cmd.Context(), cfg, manifests, kubeapply.Options{FieldManager: installFieldManager})
	for _, r := range results {
		fmt.Fprintln(cmd.OutOrStdout(), r)
	}
	if err != nil {
		return fmt.Errorf("install --apply: %w", err)
	}
	return nil
}
