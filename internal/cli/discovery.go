package cli

import (
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/lucid-mesh/lucid/internal/discovery"
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
proxy over ADS on --grpc-addr. Problems are logged naming the file, object and field.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
				return err
			}
			o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
			return discovery.Run(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.ConfigDir, "config-dir", "", "directory of Istio YAML to serve (required)")
	f.StringVar(&o.MeshConfig, "mesh-config", "", "MeshConfig YAML (the `mesh` key of Istio's ConfigMap); default: Istio's defaults")
	f.StringVar(&o.GRPCAddr, "grpc-addr", "127.0.0.1:15010", "ADS (gRPC) listen address")
	f.StringVar(&o.DebugAddr, "debug-addr", "127.0.0.1:15014", "debug HTTP listen address (/ready, /debug/syncz); empty disables")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	return cmd
}
