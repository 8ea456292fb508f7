package cli

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/lucid-mesh/lucid/internal/controlplane/discovery"
	"github.com/lucid-mesh/lucid/internal/dataplane/logging"
)

func init() { register(newDiscoveryCmd) }

func newDiscoveryCmd() *cobra.Command {
	var (
		o        discovery.Options
		logLevel string
	)
	cmd := &cobra.Command{
		Use:   "discovery",
		Short: "Run the control plane: Istio YAML in, xDS (ADS over gRPC) out",
		Long: `Run the control plane. It loads the Istio configuration in --config-dir (ServiceEntry,
WorkloadEntry, VirtualService, DestinationRule, ...), watches it, and serves every connected
proxy over ADS on --grpc-addr. Problems are logged naming the file, object and field.

With --kubernetes it also (or, without --config-dir, only) watches a Kubernetes API server:
Services and their EndpointSlices become <name>.<namespace>.svc.cluster.local with the pods'
labels, and the Istio objects (VirtualService, DestinationRule, ...) are read from their CRDs.
An invalid Istio object gets a Warning Event (reason LucidValidation) with the same message
as in file mode. The API server is found from --kubeconfig, $KUBECONFIG, the pod's service
account, or ~/.kube/config, in that order (as lucid install --apply). Several replicas may
run; each serves on its own.`,
		Example: `  lucid discovery --config-dir examples/bookinfo-lite`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lvl, err := parseSlogLevel(logLevel)
			if err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
			return discovery.Run(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.ConfigDir, "config-dir", "", "directory of Istio YAML to serve (required without --kubernetes)")
	f.BoolVar(&o.Kube.Enabled, "kubernetes", false, "watch a Kubernetes API server (Services, EndpointSlices, Pods, Istio CRDs)")
	f.StringVar(&o.Kube.Kubeconfig, "kubeconfig", "", "kubeconfig file for --kubernetes (default: $KUBECONFIG, in-cluster, ~/.kube/config)")
	f.StringVar(&o.MeshConfig, "mesh-config", "", "MeshConfig YAML (the `mesh` key of Istio's ConfigMap); default: Istio's defaults")
	f.StringVar(&o.GRPCAddr, "grpc-addr", "127.0.0.1:15010", "ADS (gRPC) listen address")
	f.StringVar(&o.DebugAddr, "debug-addr", "127.0.0.1:15014", "debug HTTP listen address (/ready, /debug/syncz); empty disables")
	f.StringVar(&o.DashboardAddr, "dashboard-addr", "", "serve the web dashboard here instead of on --debug-addr (which keeps the tap relay)")
	f.StringVar(&logLevel, "log-level", "info", "log level: trace, debug, info, warning, error, critical (as the sidecar's)")
	push := discovery.DefaultPush() // Istio's PILOT_DEBOUNCE_AFTER, PILOT_DEBOUNCE_MAX, PILOT_ENABLE_EDS_DEBOUNCE
	f.DurationVar(&o.Push.DebounceAfter, "debounce-after", push.DebounceAfter, "push a change once no other arrived for this long (PILOT_DEBOUNCE_AFTER)")
	f.DurationVar(&o.Push.DebounceMax, "debounce-max", push.DebounceMax, "push changes at most this long after the first, however many follow (PILOT_DEBOUNCE_MAX)")
	f.BoolVar(&o.Push.EDSDebounce, "eds-debounce", push.EDSDebounce, "debounce endpoint-only changes too (PILOT_ENABLE_EDS_DEBOUNCE); off: pushed at once, at most once per --eds-interval")
	f.DurationVar(&o.Push.EDSInterval, "eds-interval", push.EDSInterval, "without --eds-debounce, the least time between two pushes of endpoint changes")
	addWebhookFlags(f, &o.Webhook) // discovery_webhook.go
	addCAFlags(f, &o.CA)           // discovery_ca.go
	return cmd
}

// parseSlogLevel accepts the sidecar's (Envoy's) level names, so one --log-level works
// for every process `lucid up` starts.
func parseSlogLevel(s string) (slog.Level, error) {
	l, err := logging.ParseLevel(s)
	if err != nil {
		return 0, err
	}
	return slog.Level(l), nil
}
