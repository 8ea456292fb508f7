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
	f := cmd.Flags()
	f.StringVar(&cfg.Listen, "listen", "", "address to serve on, host:port (required)")
	f.StringVar(&cfg.Name, "name", "", "service name shown in answers (required)")
	f.StringVar(&cfg.Version, "version", "v1", "version shown in answers")
	f.StringArrayVar(&cfg.Calls, "call", nil, "URL to call on every request, through the proxy (repeatable)")
	f.StringVar(&cfg.Proxy, "proxy", "", "HTTP proxy for calls (default $"+demoapp.ProxyEnv+"; empty: call directly)")
	f.Float64Var(&cfg.FailRate, "fail-rate", 0, "fraction of requests answered 500 on purpose (0 to 1)")
	f.DurationVar(&cfg.Delay, "delay", 0, "delay added before every answer (e.g. 200ms)")
	f.StringVar(&cfg.HealthPath, "health-path", "", `answer "success" on this path (a probe target); kubelet probes (User-Agent kube-probe/…) are counted and logged`)
	f.StringVar(&cfg.FailMode, "fail-mode", "", "fail on purpose after --fail-after: oom (the health path answers 500), refuse (stop listening), hang (the health path never answers)")
	f.DurationVar(&cfg.FailAfter, "fail-after", 0, "how long after start --fail-mode begins")
	f.DurationVar(&cfg.WatchInterval, "watch-interval", 0, "serve ?watch=true requests as endless watches, one JSON event per interval (e.g. 1s; 0: off)")
	return cmd
}
