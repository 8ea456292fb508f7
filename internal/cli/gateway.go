package cli

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/spf13/cobra"

	"github.com/lucid-mesh/lucid/internal/agent"
	"github.com/lucid-mesh/lucid/internal/version"
)

func init() { register(newGatewayCmd) }

func newGatewayCmd() *cobra.Command {
	var (
		o      agent.Options
		ip     string
		labels string
	)
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "Run an ingress gateway (the proxy in router mode, Istio's istio-ingressgateway)",
		Long: `Run the proxy as a standalone ingress gateway: it connects to the control plane over ADS as a
router (node id router~<ip>~<name>.<namespace>~…), receives the listeners of the Gateway
resources whose selector matches its labels, and binds them on --ip (0.0.0.0 in a Gateway's
listener means --ip in local mode). TLS is terminated with the certificate files the
Gateway names (SIMPLE and MUTUAL), passed through by SNI (PASSTHROUGH), or not used (HTTP, TCP).
The admin API is on 127.0.0.1:15000 for a pod, a private 127.255.x.y:15000 for a loopback --ip (--admin-address), readiness on :15021/healthz/ready (and :15020), metrics on
:15020 and :15090.`,
		Example: `  # the ingress gateway of examples/bookinfo-lite (its WorkloadEntry istio-system/istio-ingressgateway),
  # with lucid discovery --config-dir examples/bookinfo-lite running
  lucid gateway --ip 127.0.0.1 --name istio-ingressgateway --namespace istio-system`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			addr, err := netip.ParseAddr(ip)
			if err != nil {
				return fmt.Errorf("--ip %q: not an IP address", ip)
			}
			if o.Workload == "" {
				return errors.New("--name is required: the gateway's name, e.g. istio-ingressgateway")
			}
			o.IP = addr
			if o.Labels, err = parseLabels(labels); err != nil {
				return fmt.Errorf("--labels: %w", err)
			}
			o.Router = true
			o.Version = version.Get().Envoy()
			return agent.Run(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&ip, "ip", "127.0.0.1", "the gateway's address: every listener and the status server bind it")
	f.StringVar(&ip, "address", "127.0.0.1", "the same as --ip")
	f.StringVar(&o.Workload, "name", "istio-ingressgateway", "the gateway's name (its WorkloadEntry in local mode)")
	f.StringVar(&o.Workload, "workload", "istio-ingressgateway", "the same as --name (as lucid sidecar spells it)")
	f.StringVar(&o.Namespace, "namespace", "istio-system", "the gateway's namespace")
	f.StringVar(&labels, "labels", "istio=ingressgateway,app=istio-ingressgateway",
		"the gateway's labels, k=v,k2=v2: Gateways whose selector matches them configure it (sent as node metadata LABELS)")
	f.StringVar(&o.Discovery, "discovery-address", "127.0.0.1:15010", "the control plane's ADS address")
	f.StringVar(&o.Discovery, "discovery", "127.0.0.1:15010", "the same as --discovery-address")
	f.Uint16Var(&o.AdminPort, "admin-port", 15000, "admin API port")
	f.Uint16Var(&o.StatusPort, "status-port", 15020, "status server port (/healthz/ready, merged metrics)")
	f.Uint16Var(&o.HealthPort, "health-port", 15021, "the proxy's health listener (/healthz/ready through the proxy)")
	f.Uint16Var(&o.PrometheusPort, "prometheus-port", 15090, "Prometheus port (/stats/prometheus); 0 disables")
	f.StringVar(&o.AccessLog, "access-log", "/dev/stdout", `access log file ("/dev/stdout" for standard output; empty disables)`)
	f.StringVar(&o.AccessLogEncoding, "access-log-encoding", "TEXT", "access log encoding: TEXT or JSON")
	f.StringVar(&o.LogLevel, "log-level", "info", "default log level: trace, debug, info, warning, error, critical, off")
	f.BoolVar(&o.LogJSON, "log-json", false, "write logs as JSON")
	addMemoryFlags(cmd, &o.MemoryOptions) // the same memory settings as a sidecar
	addDrainFlags(cmd, &o, "downstream")
	addExposureFlags(cmd, &o) // exposure.go: --admin-address, --proxy-config
	// sidecar_identity.go: the workload certificate, ISTIO_MUTUAL to the sidecars
	addIdentityFlags(cmd, &o.Identity)
	return cmd
}
