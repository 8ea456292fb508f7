package cli

import (
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/lucid-mesh/lucid/internal/local/demoapp"
)

func init() { register(newDemoAppCmd) }

func newDemoAppCmd() *cobra.Command {
	var cfg demoapp.Config
	cmd := &cobra.Command{
		Use:   "demo-app",
		Short: "Run the small demo HTTP service the examples use",
		Long: `Run the small demo HTTP service the examples use.

It answers every request with its name and version (JSON) and, for each --call URL,
calls it through the HTTP proxy (--proxy, default $LUCID_PROXY: the workload sidecar's
outbound listener) and shows the callee's status, answer and x-lucid-error header.`,
		Example: `  # productpage of examples/bookinfo-lite, calling reviews through its sidecar
  lucid demo-app --listen 127.0.20.1:9080 --name productpage --call http://reviews:9080/reviews \
      --proxy http://127.0.10.1:15001`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("proxy") {
				cfg.Proxy = os.Getenv(demoapp.ProxyEnv)
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "demo-app")
			return demoapp.Run(cmd.Context(), cfg, log)
		},
	}
	cfg.AddFlags(cmd.Flags())
	return cmd
}
