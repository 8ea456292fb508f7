package agent

import (
	"cmp"
	"errors"
	"net/netip"
	"os"
	"time"
)

// AgentOptions are the agent's part of a sidecar's options: the status server's app
// probes and metrics merge, and the shutdown sequence. The zero value is Istio's default.
type AgentOptions struct {
	HealthPort uint16 // 15021: /healthz/ready through the proxy

	// Router runs the proxy as a standalone gateway (Istio's router proxy type, see
	// router.go): node id router~…, no app (no app probes, no app metrics), and the
	// shutdown drains every listener but 15021 instead of the inbound ones.
	Router bool

	// AppProbers is ISTIO_KUBE_APP_PROBERS: the pod's original probes by status path.
	AppProbers string
	// AppAddress is where the app listens, the probes' target (Istio: the pod IP);
	// default the workload's address (IP). ProbeLocalhost targets "localhost" instead
	// (Istio's REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION).
	AppAddress     netip.Addr
	ProbeLocalhost bool
	// ProbeSourceV4/V6 are the probes' source addresses (default 127.0.0.6 and ::6).
	ProbeSourceV4, ProbeSourceV6 netip.Addr

	// PrometheusAnnotations is ISTIO_PROMETHEUS_ANNOTATIONS; AppMetricsURL, if set, is
	// the app's metrics URL instead.
	PrometheusAnnotations string
	AppMetricsURL         string

	// Profiling serves /debug/pprof/ on the status server (localhost only).
	Profiling bool

	// ExitOnZeroActiveConnections (EXIT_ON_ZERO_ACTIVE_CONNECTIONS) ends the drain early,
	// after MinimumDrainDuration (MINIMUM_DRAIN_DURATION, default 5 s), once no inbound
	// connection is left.
	ExitOnZeroActiveConnections bool
	MinimumDrainDuration        time.Duration

	// AdminAddress is the address the admin API binds (port AdminPort). Zero:
	// contract.AdminAddress(IP): 127.0.0.1 as Istio for a pod, a private 127.255.x.y in local
	// mode where every workload shares loopback. Either way only localhost and the
	// workload's own addresses may call it (hardening.go).
	AdminAddress netip.Addr
	// ProxyConfig is Istio's PROXY_CONFIG: a ProxyConfig in JSON or YAML (the mesh's
	// defaultConfig merged with the pod's proxy.istio.io/config). Lucid reads its request
	// limits and downstream settings (hardening.go); "" is Istio's defaults.
	ProxyConfig string

	// InterceptionMode is ISTIO_META_INTERCEPTION_MODE: REDIRECT when the pod's traffic
	// is captured (capture.go), NONE or "" in local mode.
	InterceptionMode string
	// DNS capture: the DNS proxy on 15053 (dns.go).
	DNSOptions
}

// Defaults of Options, Istio's numbers.
const (
	defaultDiscovery     = "127.0.0.1:15010"
	defaultAdminPort     = 15000
	defaultStatusPort    = 15020
	defaultHealthPort    = 15021
	defaultDrain         = 5 * time.Second
	defaultMinimumDrain  = 5 * time.Second
	defaultLogLevel      = "info"
	defaultAccessLogKind = "TEXT"
)

// withDefaults checks what Run cannot do without and fills in every default, so the rest
// of the agent reads the options as they are.
func (o Options) withDefaults() (Options, error) {
	if !o.IP.IsValid() {
		return o, errors.New("--ip is required: the workload's address, e.g. 127.0.10.2")
	}
	if o.Workload == "" {
		return o, errors.New("--workload is required: the WorkloadEntry's name")
	}
	o.Namespace = cmp.Or(o.Namespace, "default")
	o.Discovery = cmp.Or(o.Discovery, defaultDiscovery)
	o.AdminPort = cmp.Or(o.AdminPort, defaultAdminPort)
	o.StatusPort = cmp.Or(o.StatusPort, defaultStatusPort)
	o.HealthPort = cmp.Or(o.HealthPort, defaultHealthPort)
	o.DrainDuration = cmp.Or(o.DrainDuration, defaultDrain)
	if o.MinimumDrainDuration <= 0 {
		o.MinimumDrainDuration = defaultMinimumDrain
	}
	o.LogLevel = cmp.Or(o.LogLevel, defaultLogLevel)
	o.AccessLogEncoding = cmp.Or(o.AccessLogEncoding, defaultAccessLogKind)
	if o.LogOutput == nil {
		o.LogOutput = os.Stderr
	}
	o.Version = cmp.Or(o.Version, "dev")
	if !o.AppAddress.IsValid() {
		o.AppAddress = o.IP // Istio: the pod IP
	}
	if _, err := captureOn(o.InterceptionMode); err != nil { // capture.go
		return o, err
	}
	if o.Router { // a gateway has no app: no app probes, no app metrics
		o.AppProbers, o.PrometheusAnnotations, o.AppMetricsURL = "", "", ""
	}
	return o, nil
}
