package cli

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lucid-mesh/lucid/internal/agent"
	"github.com/lucid-mesh/lucid/internal/version"
)

func init() { register(newSidecarCmd) }

func newSidecarCmd() *cobra.Command {
	var (
		o       agent.Options
		ip      string
		labels  string
		appAddr string
	)
	cmd := &cobra.Command{
		Use:   "sidecar",
		Short: "Run the sidecar (agent and proxy) for one workload",
		Long: `Run the sidecar for one workload: it connects to the control plane over ADS, binds the
workload's listeners on --ip (local mode: an explicit HTTP proxy on :15001, one socket per inbound
port), serves the admin API on 127.0.0.1:15000 for a pod, a private 127.255.x.y:15000 for a loopback --ip (--admin-address), the status server on :15020 and metrics on :15090.`,
		Example: `  # productpage's sidecar in examples/bookinfo-lite, with lucid discovery --config-dir examples/bookinfo-lite running
  lucid sidecar --ip 127.0.10.1 --workload productpage`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			addr, err := netip.ParseAddr(ip)
			if err != nil {
				return fmt.Errorf("--ip %q: not an IP address", ip)
			}
			o.IP = addr
			if o.Labels, err = parseLabels(labels); err != nil {
				return fmt.Errorf("--labels: %w", err)
			}
			if appAddr != "" {
				if o.AppAddress, err = netip.ParseAddr(appAddr); err != nil {
					return fmt.Errorf("--app-address %q: not an IP address", appAddr)
				}
			}
			o.Version = version.Get().Envoy()
			return agent.Run(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&ip, "ip", "", "the workload's address (required), e.g. 127.0.10.2")
	f.StringVar(&o.Workload, "workload", "", "the workload's name, as its WorkloadEntry (required)")
	f.StringVar(&o.Namespace, "namespace", "default", "the workload's namespace")
	f.StringVar(&labels, "labels", "", "the workload's labels, k=v,k2=v2 (for metrics)")
	f.StringVar(&o.Discovery, "discovery-address", "127.0.0.1:15010", "the control plane's ADS address")
	f.Uint16Var(&o.AdminPort, "admin-port", 15000, "admin API port")
	f.Uint16Var(&o.StatusPort, "status-port", 15020, "status server port (/healthz/ready)")
	f.Uint16Var(&o.PrometheusPort, "prometheus-port", 15090, "Prometheus port (/stats/prometheus); 0 disables")
	f.StringVar(&o.AccessLog, "access-log", "", `access log file ("/dev/stdout" for standard output; empty disables)`)
	f.StringVar(&o.AccessLogEncoding, "access-log-encoding", "TEXT", "access log encoding: TEXT or JSON")
	f.StringVar(&o.LogLevel, "log-level", "info", "default log level: trace, debug, info, warning, error, critical, off")
	f.BoolVar(&o.LogJSON, "log-json", false, "write logs as JSON")
	addDrainFlags(cmd, &o, "inbound")
	f.DurationVar(&o.UpstreamIdleBound, "upstream-idle-bound", 0,
		"a request that cannot be replayed (POST, PATCH without Idempotency-Key) reuses an upstream connection idle at most this long until the upstream's idle timeout is learned (default 1s; negative: no bound)")
	addAgentFlags(cmd, &o, &appAddr)
	addMemoryFlags(cmd, &o.MemoryOptions)
	addExposureFlags(cmd, &o) // exposure.go: --admin-address, --proxy-config
	// sidecar_identity.go: the workload certificate
	addIdentityFlags(cmd, &o.Identity)
	cmd.AddCommand(newSidecarWaitCmd())
	return cmd
}

func parseLabels(s string) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not key=value", kv)
		}
		out[k] = v
	}
	return out, nil
}
