package agent

import (
	"github.com/lucid-mesh/lucid/internal/agent/appprobe"
	"github.com/lucid-mesh/lucid/internal/agent/status"
	"github.com/lucid-mesh/lucid/internal/dataplane/logging"
	"github.com/lucid-mesh/lucid/internal/dataplane/stats"
)

// newStatusServer builds the status server: readiness, the app probes from
// ISTIO_KUBE_APP_PROBERS, the merged metrics, /quitquitquit and /drain. A bad probe or
// metrics configuration stops the sidecar at start, naming the key and field.
func newStatusServer(o Options, ready status.Probe, st *stats.Stats, logs *logging.Registry, quit, drain func(), onProbeFailure func(appprobe.Failure)) (*status.Server, error) {
	cfg, err := appprobe.Parse(o.AppProbers)
	if err != nil {
		return nil, err
	}
	target := o.AppAddress
	host := target.String()
	if o.ProbeLocalhost {
		host = "localhost"
	}
	probes, err := appprobe.New(appprobe.Options{
		Config: cfg, Target: host, StatusPort: o.StatusPort,
		SourceV4: o.ProbeSourceV4, SourceV6: o.ProbeSourceV6,
		Logger: logs.Logger("probes"), Registerer: st.Registry(), OnFailure: onProbeFailure,
	})
	if err != nil {
		return nil, err
	}
	var app *status.AppScrape
	if o.AppMetricsURL != "" {
		app = &status.AppScrape{URL: o.AppMetricsURL}
	} else if app, err = status.ParsePrometheusAnnotations(o.PrometheusAnnotations, target.String(), o.StatusPort); err != nil {
		return nil, err
	}
	return status.NewServer(status.Options{
		Ready: ready, Log: logs.Logger("agent"), AppProbes: probes,
		Metrics: st.Registry(), AppMetrics: app, Registerer: st.Registry(),
		Quit: quit, Drain: drain, Profiling: o.Profiling, StartGrace: startGrace,
		Callers: callers(o), // hardening.go: only localhost and this workload's own addresses
	})
}
