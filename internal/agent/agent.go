// Package agent runs one sidecar process: the xDS client, the proxy, the admin API, the
// status server and the observers (access log, stats), started and stopped in a fixed
// order. It is the data plane's composition root; `lucid sidecar` calls Run.
//
//	start: status server → admin → proxy (empty) → xDS client (applies config to the proxy)
//	stop:  not ready → proxy drains → xDS client → admin/status servers
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lucid-mesh/lucid/internal/contract"
	"github.com/lucid-mesh/lucid/internal/dataplane/accesslog"
	"github.com/lucid-mesh/lucid/internal/dataplane/admin"
	"github.com/lucid-mesh/lucid/internal/dataplane/cluster"
	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/logging"
	"github.com/lucid-mesh/lucid/internal/dataplane/pool"
	"github.com/lucid-mesh/lucid/internal/dataplane/proxy"
	"github.com/lucid-mesh/lucid/internal/dataplane/stats"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
	"github.com/lucid-mesh/lucid/internal/dataplane/tap"
	"github.com/lucid-mesh/lucid/internal/dataplane/xdsclient"
)

// Options configure a sidecar.
type Options struct {
	IP        netip.Addr // the workload's address; every port below is bound on it
	Workload  string
	Namespace string
	Labels    map[string]string // the workload's labels (metrics' source/destination app, version)
	Discovery string            // host:port of the control plane's ADS server

	AdminPort      uint16 // 15000
	StatusPort     uint16 // 15020
	PrometheusPort uint16 // 15090 (0 disables)

	AccessLog         string // file path, "/dev/stdout", or "" for none
	AccessLogEncoding string // TEXT or JSON
	LogLevel          string // default level for every logger
	LogJSON           bool
	LogOutput         io.Writer // default os.Stderr

	DrainDuration time.Duration // how long inbound connections may finish at shutdown (5 s)
	Version       string

	// Agent (status server, app probes, drain); see agentopts.go.
	AgentOptions
	// Memory (GC target, soft limit, startup pages); see footprint.go.
	MemoryOptions
}

// NodeID is Istio's node id for a sidecar: sidecar~<ip>~<name>.<namespace>~<namespace>.svc.cluster.local.
func NodeID(ip netip.Addr, workload, namespace string) string {
	return fmt.Sprintf("sidecar~%s~%s.%s~%s.svc.cluster.local", ip, workload, namespace, namespace)
}

// Run starts the sidecar and blocks until ctx ends, then shuts down in order.
func Run(ctx context.Context, o Options) error {
	if !o.IP.IsValid() {
		return errors.New("--ip is required: the workload's address, e.g. 127.0.10.2")
	}
	if o.Workload == "" {
		return errors.New("--workload is required: the WorkloadEntry's name")
	}
	if o.Namespace == "" {
		o.Namespace = "default"
	}
	if o.DrainDuration == 0 {
		o.DrainDuration = 5 * time.Second
	}
	routerDefaults(&o) // router.go
	out := o.LogOutput
	if out == nil {
		out = os.Stderr
	}
	lvl, err := logging.ParseLevel(orDefault(o.LogLevel, "info"))
	if err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	logs := logging.NewRegistry(out, lvl, o.LogJSON)
	mainLog := logs.Logger("main")

	self := streaminfo.Peer{
		Workload: o.Workload, Namespace: o.Namespace,
		App: o.Labels["app"], Version: o.Labels["version"],
		CanonicalService:  firstNonEmpty(o.Labels["service.istio.io/canonical-name"], o.Labels["app"], o.Workload),
		CanonicalRevision: firstNonEmpty(o.Labels["service.istio.io/canonical-revision"], o.Labels["version"], "latest"),
		Cluster:           "Kubernetes",
	}
	st := stats.New(self)
	taps := tap.New(o.Workload + "." + o.Namespace) // admin /tap: lucid tap, top, the dashboard
	observers := []func(*streaminfo.Info){st.Record, taps.Observe}
	connObservers := []func(*streaminfo.Info){taps.Observe} // TCP connections: access log (istio_tcp_* counted as bytes move)
	var alog *accesslog.Logger
	if o.AccessLog != "" {
		f, err := accesslog.ParseFormat(orDefault(o.AccessLogEncoding, "TEXT"))
		if err != nil {
			return fmt.Errorf("--access-log-encoding: %w", err)
		}
		w, closeW, err := openLog(o.AccessLog)
		if err != nil {
			return fmt.Errorf("--access-log: %w", err)
		}
		defer closeW()
		alog = accesslog.New(w, f)
		defer alog.Close()
		observers = append(observers, alog.Log)
		connObservers = append(connObservers, alog.Log)
	}

	down, err := parseProxyConfig(o.ProxyConfig) // hardening.go
	if err != nil {
		return err
	}
	clusters := cluster.NewManager(logs.Logger("upstream"))
	pools := pool.NewSet(logs.Logger("pool"))
	pools.SetSourceAddress(o.IP)
	defer pools.Close()
	fw := forward.New(forward.Options{Clusters: clusters, Pools: pools, Observers: observers, ConnectionObservers: connObservers,
		ConnectionMetrics: func(i *streaminfo.Info) forward.ConnectionCounter { return st.TCPOpened(i) }, Self: self, Logger: logs.Logger("router")})
	px := proxy.New(proxy.Options{IP: o.IP, Forwarder: fw, Clusters: clusters, Pools: pools, Logger: logs.Logger("connection"), DrainTimeout: o.DrainDuration,
		RequestLimits: down.limits, IdleTimeout: down.idle})

	nodeID := nodeIDOf(o) // router.go: sidecar~… or router~…
	meta := map[string]string{"NAME": o.Workload, "NAMESPACE": o.Namespace, "INSTANCE_IPS": o.IP.String(), "WORKLOAD_NAME": o.Workload,
		adminMetadata: adminAddress(o).String()} // hardening.go: where the CLI finds the admin API
	if len(o.Labels) > 0 {
		meta["LABELS"] = formatLabels(o.Labels)
	}
	// The xDS client applies through the agent's applier: static resources (15021)
	// added, inbound listeners held back while draining.
	apl := &applier{proxy: px, router: o.Router, static: newStatic(o.IP, orPort(o.StatusPort, 15020), orPort(o.HealthPort, 15021))}
	defer startMemoryTuning(ctx, o.MemoryOptions, mainLog, apl.dynamic.Load)() // footprint.go
	xc := xdsclient.New(xdsclient.Options{
		Server: orDefault(o.Discovery, "127.0.0.1:15010"), NodeID: nodeID, Cluster: "Kubernetes", Metadata: meta,
		Applier: apl, Logger: logs.Logger("config"),
	})

	var draining atomic.Bool
	started := time.Now()
	state := func() string {
		switch {
		case draining.Load():
			return "DRAINING"
		case apl.dynamic.Load():
			return "LIVE"
		default:
			return "INITIALIZING"
		}
	}
	ready := func() error { return readiness(xc.Status(), apl.dynamic.Load(), px.Missing(), draining.Load()) }

	quit := make(chan struct{})
	var quitOnce sync.Once
	adminH := admin.New(admin.Options{
		ConfigDump: xc.ConfigDump,
		Clusters:   func() []admin.ClusterStatus { return clusterStatuses(clusters) },
		Listeners:  func() []admin.ListenerStatus { return listenerStatuses(px) },
		Logging:    logs,
		Stats:      st,
		State:      state,
		ServerInfo: func() admin.ServerInfo {
			return admin.ServerInfo{Version: o.Version, State: state(), NodeID: nodeID, Cluster: "Kubernetes", Uptime: time.Since(started), Metadata: meta}
		},
		Quit:    func() { quitOnce.Do(func() { close(quit) }) },
		Tap:     taps,
		Log:     logs.Logger("admin"),
		Callers: callers(o), // hardening.go
	})
	exposeStats(st, px, started, state) // hardening.go: server.*, listener.*.downstream_cx_*
	st.AddCounters(clusterCounters(clusters))
	st.AddGauges(clusterGauges(clusters))
	// listener.<name>.ssl.*: TLS handshakes and client-certificate failures (routers).
	st.AddCounters(px.EachTLSStat)
	st.Registry().MustRegister(clusters.Collector()) // lucid_upstream_reused_conn_retries_total

	drainReq := make(chan struct{}, 1)
	probeEv := newProbeEvents(xc, o.Workload, o.Namespace, logs.Logger("probes")) // probeevents.go
	statusSrv, err := newStatusServer(o, ready, st, logs, func() { quitOnce.Do(func() { close(quit) }) }, func() {
		select {
		case drainReq <- struct{}{}:
		default:
		}
	}, probeEv.hook)
	if err != nil {
		return err
	}

	var servers []*http.Server
	serve := func(addr netip.AddrPort, h http.Handler, what string) error {
		ln, err := net.Listen("tcp", addr.String())
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, srv)
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				mainLog.Error("server stopped", "server", what, "error", err)
			}
		}()
		return nil
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		for _, s := range servers {
			_ = s.Shutdown(sctx)
		}
	}()
	defer taps.Close() // before the servers shut down: ends the admin API's /tap streams
	if err := serve(netip.AddrPortFrom(o.IP, orPort(o.StatusPort, 15020)), statusSrv.Handler(), "status server"); err != nil {
		return err
	}
	if err := serve(adminAddress(o), adminH, "admin"); err != nil {
		return err
	}
	if o.PrometheusPort != 0 {
		mux := http.NewServeMux()
		mux.Handle("/stats/prometheus", st.PrometheusHandler())
		if err := serve(netip.AddrPortFrom(o.IP, o.PrometheusPort), mux, "prometheus"); err != nil {
			return err
		}
	}

	// The bootstrap's listeners (15021) are bound before any xDS configuration arrives.
	if err := apl.applyStatic(); err != nil {
		return fmt.Errorf("static listeners: %w", err)
	}

	xctx, stopXDS := context.WithCancel(context.Background())
	xdone := make(chan error, 1)
	go func() { xdone <- xc.Run(xctx) }()
	evDone := make(chan struct{})
	go func() { defer close(evDone); probeEv.run(xctx) }()
	mainLog.Info(proxyKind(o)+" started", "node", nodeID, "discovery", orDefault(o.Discovery, "127.0.0.1:15010"),
		"admin", adminAddress(o).String())

	lifecycle{o: o, log: mainLog, proxy: px, applier: apl, draining: &draining, quit: quit, drainReq: drainReq}.run(ctx)
	stopXDS()
	<-evDone
	if err := <-xdone; err != nil {
		mainLog.Error("xds client stopped", "error", err)
	}
	return nil
}

func readiness(s xdsclient.Status, applied bool, missing []string, draining bool) error {
	if draining {
		return errors.New("server is draining")
	}
	lds, cds := s.Types[contract.LDS], s.Types[contract.CDS]
	var nacks []string
	for _, t := range []string{contract.LDS, contract.CDS, contract.RDS, contract.EDS} {
		if r := s.Types[t].NackReason; r != "" {
			nacks = append(nacks, t+": "+r)
		}
	}
	switch {
	case !lds.Received && !cds.Received && len(nacks) == 0:
		return errors.New("config not received from XDS server (is the control plane running?)")
	case !lds.Received || !cds.Received:
		if len(nacks) > 0 {
			return fmt.Errorf("config received from XDS server, but was rejected: %s", strings.Join(nacks, "; "))
		}
		return fmt.Errorf("config not fully received from XDS server: listeners received=%t, clusters received=%t", lds.Received, cds.Received)
	case !applied:
		return errors.New("config received but listeners are not bound yet")
	case len(missing) > 0:
		if len(missing) > 5 {
			missing = append(missing[:5:5], fmt.Sprintf("and %d more", len(missing)-5))
		}
		return fmt.Errorf("config not fully received from XDS server: waiting for %s", strings.Join(missing, ", "))
	}
	return nil
}

func openLog(path string) (io.Writer, func(), error) {
	switch path {
	case "/dev/stdout", "-":
		return os.Stdout, func() {}, nil
	case "/dev/stderr":
		return os.Stderr, func() {}, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644) //nolint:gosec // G302: access logs are world-readable, as Envoy creates them (0644)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { _ = f.Close() }, nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func orPort(p, d uint16) uint16 {
	if p == 0 {
		return d
	}
	return p
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
