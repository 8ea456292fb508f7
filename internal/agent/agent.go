// Package agent runs one sidecar process: the xDS client, the proxy, the admin API, the
// status server and the observers (access log, stats), started and stopped in a fixed
// order. It is the data plane's composition root; `lucid sidecar` calls Run.
//
//	start: status server → admin → proxy (empty) → xDS client (applies config to the proxy)
//	stop:  not ready → proxy drains → xDS client → admin/status servers
package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lucid-mesh/lucid/internal/contract"
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
	// Version is the build as /server_info and the bootstrap node report it
	// (version.Info.Envoy: commit/version/Clean|Modified/RELEASE/go…); default "dev".
	Version string

	// UpstreamIdleBound: a request that cannot be replayed reuses an upstream connection
	// idle at most this long while the host's idle timeout is not learned (pool.Set.SetIdleBound;
	// 0: 1 s, negative: no bound).
	UpstreamIdleBound time.Duration

	// Agent (status server, app probes, drain); see agentopts.go.
	AgentOptions
	// Identity is the workload certificate from the mesh CA (identity.go).
	Identity IdentityOptions
	// Memory (GC target, soft limit, startup pages); see footprint.go.
	MemoryOptions
}

// NodeID is Istio's node id for a sidecar: sidecar~<ip>~<name>.<namespace>~<namespace>.svc.cluster.local.
func NodeID(ip netip.Addr, workload, namespace string) string {
	return fmt.Sprintf("sidecar~%s~%s.%s~%s.svc.cluster.local", ip, workload, namespace, namespace)
}

// Run starts the sidecar and blocks until ctx ends, then shuts down in order.
func Run(ctx context.Context, o Options) error {
	o, err := o.withDefaults() // agentopts.go: every default, once
	if err != nil {
		return err
	}
	lvl, err := logging.ParseLevel(o.LogLevel)
	if err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	logs := logging.NewRegistry(o.LogOutput, lvl, o.LogJSON)
	mainLog := logs.Logger("main")

	st := stats.New(peerOf(o))
	taps := tap.New(o.Workload + "." + o.Namespace)                              // admin /tap: lucid tap, top, the dashboard
	obs, closeObservers, err := newObservers(o, st, taps, logs.Logger("router")) // observers.go
	if err != nil {
		return err
	}
	defer closeObservers()

	down, err := parseProxyConfig(o.ProxyConfig) // hardening.go
	if err != nil {
		return err
	}
	idm, stopIdentity, err := startIdentity(ctx, o, logs.Logger("secret")) // identity.go
	if err != nil {
		return err
	}
	defer stopIdentity()
	clusters := cluster.NewManager(logs.Logger("upstream"))
	pools := pool.NewSet(logs.Logger("pool"))
	pools.SetSourceAddress(o.IP)
	pools.SetIdleBound(o.UpstreamIdleBound)
	clusters.OnHostsRemoved(pools.ForgetHosts) // learned idle timeouts leave with their hosts
	// proxy/mtls_upstream.go: ISTIO_MUTUAL and auto mTLS on new upstream connections
	pools.SetUpstreamTLS(proxy.UpstreamTLS(clusters, mtlsOf(idm)))
	defer pools.Close()
	tracers, closeTracers := newTracers(o, clusters, st, logs.Logger("tracing")) // tracing.go
	defer closeTracers()
	fw := forward.New(forward.Options{Clusters: clusters, Pools: pools, Observers: obs.requests, ConnectionObservers: obs.connections,
		ConnectionMetrics: func(i *streaminfo.Info) forward.ConnectionCounter { return st.TCPOpened(i) }, Self: peerOf(o), Identity: identityURI(o), Logger: logs.Logger("router"),
		Tracers: tracers, PeerMetadata: peerMetadata(o), AccessLog: obs.accessLog, ConnectionAccessLog: obs.connectionAccessLog, Metrics: obs.metrics}) // tracing.go, peermeta.go, observers.go
	capture, _ := captureOn(o.InterceptionMode) // capture.go (checked by withDefaults)
	if msg := tproxyUserWarning(o.InterceptionMode, os.Geteuid()); msg != "" {
		logs.Logger("agent").Warn(msg)
	}
	px := proxy.New(proxy.Options{IP: o.IP, Forwarder: fw, Clusters: clusters, Pools: pools, Logger: logs.Logger("connection"), DrainTimeout: o.DrainDuration,
		RequestLimits: down.limits, IdleTimeout: down.idle, MTLS: mtlsOf(idm), Capture: capture, Transparent: transparent(o.InterceptionMode)})

	nodeID := nodeIDOf(o) // router.go: sidecar~… or router~…
	meta := map[string]string{"NAME": o.Workload, "NAMESPACE": o.Namespace, "INSTANCE_IPS": o.IP.String(), "WORKLOAD_NAME": o.Workload,
		adminMetadata: adminAddress(o).String()} // hardening.go: where the CLI finds the admin API
	if len(o.Labels) > 0 {
		meta["LABELS"] = formatLabels(o.Labels)
	}
	identityMetadata(o, meta) // xds_tls.go
	if o.InterceptionMode != "" {
		meta["INTERCEPTION_MODE"] = strings.ToUpper(o.InterceptionMode)
	}
	dnsMetadata(o.DNSOptions, meta)
	nameTables, stopDNS, err := startDNS(context.WithoutCancel(ctx), o.DNSOptions, o.Namespace, logs.Logger("dns")) // dns.go: serves until Run returns
	if err != nil {
		return err
	}
	defer stopDNS()
	// The xDS client applies through the agent's applier: static resources (15021)
	// added, inbound listeners held back while draining.
	apl := &applier{proxy: px, router: o.Router, static: newStatic(agentEndpoint(o.IP), o.StatusPort, o.HealthPort)}
	defer startMemoryTuning(ctx, o.MemoryOptions, mainLog, func() (applied, complete bool) { // footprint.go
		applied = apl.dynamic.Load()
		return applied, applied && len(px.Missing()) == 0
	})()
	var xc *xdsclient.Client
	started := time.Now()
	xc = xdsclient.New(xdsclient.Options{
		Server: o.Discovery, NodeID: nodeID, Cluster: "Kubernetes", Metadata: meta, Version: o.Version, DialOptions: xdsDialOptions(o, idm), // xds_tls.go
		Applier: apl, NameTable: nameTables, Logger: quietWhileStarting(logs.Logger("config"), started, func() bool { return heardFrom(xc.Status()) }), // startgrace.go
	})

	var draining atomic.Bool
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
	ready := func() error {
		return cmp.Or(identityReady(idm), readiness(xc.Status(), apl.dynamic.Load(), px.Missing(), draining.Load()))
	}

	quit := make(chan struct{})
	var quitOnce sync.Once
	stop := func() { quitOnce.Do(func() { close(quit) }) }
	adminH := admin.New(admin.Options{
		ConfigDump: withSecrets(xc.ConfigDump, idm), // identity.go
		Clusters:   func() []admin.ClusterStatus { return clusterStatuses(clusters, pools) },
		Listeners:  func() []admin.ListenerStatus { return listenerStatuses(px) },
		Logging:    logs,
		Stats:      st,
		State:      state,
		ServerInfo: func() admin.ServerInfo {
			return admin.ServerInfo{Version: o.Version, State: state(), NodeID: nodeID, Cluster: "Kubernetes", Uptime: time.Since(started), Metadata: meta}
		},
		Quit:    stop,
		Tap:     taps,
		Log:     logs.Logger("admin"),
		Callers: callers(o), // hardening.go
	})
	exposeStats(st, px, started, state) // hardening.go: server.*, listener.*.downstream_cx_*
	st.AddCounters(clusterCounters(clusters))
	st.AddCounters(pools.EachStat) // upstream_cx_idle_{retired,avoided,extra}
	st.AddGauges(clusterGauges(clusters))
	// listener.<name>.ssl.*: TLS handshakes and client-certificate failures (routers).
	st.AddCounters(px.EachTLSStat)
	// mtls.plaintext_refused: plaintext refused by STRICT ports (proxy/mtls.go)
	st.AddCounters(px.EachMTLSStat)
	// rbac.policy.<policy>.denied: refusals per AuthorizationPolicy rule (forward/authz.go).
	st.AddCounters(fw.EachAuthzStat)
	st.Registry().MustRegister(clusters.Collector()) // lucid_upstream_reused_conn_retries_total

	drainReq := make(chan struct{}, 1)
	probeEv := newProbeEvents(xc, o.Workload, o.Namespace, logs.Logger("probes")) // probeevents.go
	statusSrv, err := newStatusServer(o, ready, st, logs, stop, func() {
		select {
		case drainReq <- struct{}{}:
		default:
		}
	}, probeEv.hook)
	if err != nil {
		return err
	}

	srvs := servers{ip: o.IP, log: mainLog}
	defer srvs.shutdown()
	defer taps.Close() // before the servers shut down: ends the admin API's /tap streams
	// capture.go: 0.0.0.0 in a pod (the proxy calls 127.0.0.1, the kubelet the pod IP)
	statusAddr := netip.AddrPortFrom(statusListenAddr(o.IP), o.StatusPort)
	if err := srvs.startAt(statusAddr, statusSrv.Handler(), "status server"); err != nil {
		return err
	}
	if err := srvs.startAt(adminAddress(o), adminH, "admin"); err != nil {
		return err
	}
	if o.PrometheusPort != 0 {
		mux := http.NewServeMux()
		mux.Handle("/stats/prometheus", st.PrometheusHandler())
		if err := srvs.start(o.PrometheusPort, mux, "prometheus"); err != nil {
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
	mainLog.Info(proxyKind(o)+" started", "node", nodeID, "discovery", o.Discovery,
		"admin", adminAddress(o).String(), "version", o.Version)

	lifecycle{o: o, log: mainLog, proxy: px, applier: apl, draining: &draining, quit: quit, drainReq: drainReq}.run(ctx)
	stopXDS()
	<-evDone
	if err := <-xdone; err != nil {
		mainLog.Error("xds client stopped", "error", err)
	}
	return nil
}

// peerOf is the workload itself as metrics and the access log name it.
func peerOf(o Options) streaminfo.Peer {
	return streaminfo.Peer{
		Workload: o.Workload, Namespace: o.Namespace,
		App: o.Labels["app"], Version: o.Labels["version"],
		CanonicalService:  cmp.Or(o.Labels["service.istio.io/canonical-name"], o.Labels["app"], o.Workload),
		CanonicalRevision: cmp.Or(o.Labels["service.istio.io/canonical-revision"], o.Labels["version"], "latest"),
		Cluster:           "Kubernetes",
	}
}

// servers are the agent's own HTTP servers (status, admin, Prometheus), each on a port of
// the workload's address; shutdown stops them all.
type servers struct {
	ip   netip.Addr
	log  *slog.Logger
	list []*http.Server
}

// start binds ip:port and serves h there; the error names the server.
func (s *servers) start(port uint16, h http.Handler, what string) error {
	return s.startAt(netip.AddrPortFrom(s.ip, port), h, what)
}

// startAt binds addr and serves h there; the error names the server.
func (s *servers) startAt(addr netip.AddrPort, h http.Handler, what string) error {
	ln, err := net.Listen("tcp", addr.String())
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	s.list = append(s.list, srv)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("server stopped", "server", what, "error", err)
		}
	}()
	return nil
}

// shutdown stops every server, giving their requests 2 s to finish.
func (s *servers) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, srv := range s.list {
		_ = srv.Shutdown(ctx)
	}
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
