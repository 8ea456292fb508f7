package cli

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/lucid-mesh/lucid/internal/agent"
	"github.com/lucid-mesh/lucid/internal/agent/status"
)

// addAgentFlags adds the agent's flags to `lucid sidecar`. Their defaults come from the
// environment variables Istio's injector and proxy config set, so an injected pod works
// unchanged; the flags are for local mode.
func addAgentFlags(cmd *cobra.Command, o *agent.Options, appAddr *string) {
	f := cmd.Flags()
	f.StringVar(&o.AppProbers, "app-probers", os.Getenv("ISTIO_KUBE_APP_PROBERS"),
		`the pod's original probes, in ISTIO_KUBE_APP_PROBERS's JSON, e.g. {"/app-health/web/livez":{"httpGet":{"path":"/ok","port":8080}}} (default $ISTIO_KUBE_APP_PROBERS)`)
	f.StringVar(appAddr, "app-address", os.Getenv("INSTANCE_IP"), "where the app listens, the app probes' target (the pod IP; default --ip)")
	f.BoolVar(&o.ProbeLocalhost, "probe-localhost", envBool("REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION"),
		"send app probes to localhost instead of the app address (default $REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION)")
	f.StringVar(&o.PrometheusAnnotations, "prometheus-annotations", os.Getenv("ISTIO_PROMETHEUS_ANNOTATIONS"),
		`the app's prometheus.io annotations as JSON, {"scrape":"true","path":"/metrics","port":"8080"}, merged into :15020/stats/prometheus (default $ISTIO_PROMETHEUS_ANNOTATIONS)`)
	f.StringVar(&o.AppMetricsURL, "app-metrics-url", "", "the app's metrics URL, merged into :15020/stats/prometheus (instead of --prometheus-annotations)")
	f.BoolVar(&o.Profiling, "profiling", false, "serve /debug/pprof/ on the status server (localhost only)")
	f.Uint16Var(&o.HealthPort, "health-port", 15021, "the proxy's health listener (/healthz/ready through the proxy)")
	f.StringVar(&o.InterceptionMode, "interception-mode", os.Getenv("ISTIO_META_INTERCEPTION_MODE"),
		"REDIRECT or TPROXY: the pod's traffic is captured (lucid iptables); the sidecar serves 0.0.0.0:15001 and :15006 by original destination (TPROXY: IP_TRANSPARENT, needs CAP_NET_ADMIN); NONE or empty: local mode (default $ISTIO_META_INTERCEPTION_MODE)")
	f.BoolVar(&o.DNSCapture, "dns-capture", envBool("ISTIO_META_DNS_CAPTURE"),
		"serve DNS on 127.0.0.1:15053 from the mesh's name table (the capture rules send the pod's DNS there), the rest forwarded to --resolv-conf's resolvers (default $ISTIO_META_DNS_CAPTURE)")
	f.BoolVar(&o.DNSAutoAllocate, "dns-auto-allocate", envBool("ISTIO_META_DNS_AUTO_ALLOCATE"),
		"with --dns-capture, ServiceEntries without an address answer with one from 240.240.0.0/16 (default $ISTIO_META_DNS_AUTO_ALLOCATE)")
	f.StringVar(&o.ResolvConf, "resolv-conf", "/etc/resolv.conf", "with --dns-capture, the resolv.conf whose resolvers and search domains the DNS proxy uses")
}

// addDrainFlags adds the shutdown drain's flags (Istio's proxy config and agent variables)
// to `lucid sidecar` and `lucid gateway`; which connections drain is the command's: a
// sidecar's inbound ones, every one of a gateway.
func addDrainFlags(cmd *cobra.Command, o *agent.Options, which string) {
	f := cmd.Flags()
	f.DurationVar(&o.DrainDuration, "drain-duration", 0, "how long "+which+" connections may finish at shutdown (default 5s)")
	f.BoolVar(&o.ExitOnZeroActiveConnections, "exit-on-zero-active-connections", envBool("EXIT_ON_ZERO_ACTIVE_CONNECTIONS"),
		"at shutdown, exit as soon as no "+which+" connection is left (after --minimum-drain-duration) (default $EXIT_ON_ZERO_ACTIVE_CONNECTIONS)")
	f.DurationVar(&o.MinimumDrainDuration, "minimum-drain-duration", envDuration("MINIMUM_DRAIN_DURATION", 5*time.Second),
		"with --exit-on-zero-active-connections, the drain lasts at least this long (default $MINIMUM_DRAIN_DURATION or 5s)")
}

func envBool(name string) bool {
	b, _ := strconv.ParseBool(os.Getenv(name))
	return b
}

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil && d > 0 {
		return d
	}
	return def
}

func newSidecarWaitCmd() *cobra.Command {
	var (
		url     string
		ip      string
		timeout time.Duration
		period  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "wait",
		Short: "Wait until the sidecar is ready (for a postStart hook, Istio's `pilot-agent wait`)",
		Long: `Poll the sidecar's /healthz/ready until it answers 200, or fail after --timeout. Use it as
the app's postStart hook (Istio's holdApplicationUntilProxyStarts) so that the app starts
only once its sidecar can carry traffic.`,
		Example: `  lucid sidecar wait --ip 127.0.10.1 --timeout 30s`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if url == "" {
				url = fmt.Sprintf("http://%s:15021/healthz/ready", ip)
			}
			return status.Wait(cmd.Context(), url, timeout, period, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&url, "url", "", "the readiness URL (default http://<--ip>:15021/healthz/ready)")
	f.StringVar(&ip, "ip", cmpOr(os.Getenv("INSTANCE_IP"), "localhost"), "the sidecar's address, used when --url is not given (default $INSTANCE_IP, else localhost)")
	f.DurationVar(&timeout, "timeout", 60*time.Second, "how long to wait")
	f.DurationVar(&period, "period", 500*time.Millisecond, "how often to ask")
	return cmd
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
