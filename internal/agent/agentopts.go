package agent

import (
	"net/netip"
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

	// AdminAddress is the address the admin API binds (port AdminPort). Istio binds it to
	// 127.0.0.1; in local mode, where every workload shares loopback, `lucid up` gives each
	// proxy a private one. Zero: the workload's address (IP). Either way only localhost and
	// the workload's own addresses may call it (hardening.go).
	AdminAddress netip.Addr
	// ProxyConfig is Istio's PROXY_CONFIG: a ProxyConfig in JSON or YAML (the mesh's
	// defaultConfig merged with the pod's proxy.istio.io/config). Lucid reads its request
	// limits and downstream settings (hardening.go); "" is Istio's defaults.
	ProxyConfig string
}
