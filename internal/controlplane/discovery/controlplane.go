package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"

	"github.com/lucid-mesh/lucid/internal/controlplane/ads"
	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/controlplane/model"
	"github.com/lucid-mesh/lucid/internal/controlplane/source/file"
	"github.com/lucid-mesh/lucid/internal/controlplane/store"
)

// controlPlane is the assembled control plane before it runs: the sources feeding the
// store, the generator and ADS server the store's snapshots are published to, and the
// state the debug port reads. Run starts its parts; publish is the store's callback.
type controlPlane struct {
	o    Options
	log  *slog.Logger
	mesh *meshv1alpha1.MeshConfig

	files *file.Source
	kube  *kubeRunner // nil without --kubernetes
	store *store.Store

	gen     *generator
	srv     *ads.Server
	lis     net.Listener // ADS
	reg     *prometheus.Registry
	metrics *ads.Metrics

	diags    *diagnostics  // /debug/diagnostics: diagnostics.go
	analysis *analyzeState // /debug/analyze: debug_analyze.go
	ready    atomic.Bool   // the first configuration was published
	prev     *model.Mesh   // the mesh of the previous publish, for model.Diff
}

// newControlPlane checks the options, loads the mesh config, binds the ADS listener and
// wires the store, the generator and the ADS server's metrics; nothing runs yet.
func newControlPlane(o Options) (*controlPlane, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.ConfigDir == "" && !o.Kube.Enabled {
		return nil, errors.New("--config-dir or --kubernetes is required")
	}
	meshCfg, err := config.LoadMeshConfig(o.MeshConfig)
	if err != nil {
		return nil, fmt.Errorf("--mesh-config: %w", err)
	}
	kr, err := newKubeRunner(o.Kube, meshCfg, log)
	if err != nil {
		return nil, err
	}
	grpcAddr := o.GRPCAddr
	if grpcAddr == "" {
		grpcAddr = "127.0.0.1:15010"
	}
	lis, err := net.Listen("tcp", grpcAddr)
	if err != nil {
		return nil, fmt.Errorf("ADS listener: %w", err)
	}

	cp := &controlPlane{o: o, log: log, mesh: meshCfg, kube: kr, lis: lis, gen: &generator{}}
	cp.srv = ads.New(cp.gen, log.With("component", "ads"))
	cp.reg = prometheus.NewRegistry()
	cp.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if cp.metrics, err = ads.NewMetrics(cp.srv, cp.reg); err != nil {
		_ = lis.Close()
		return nil, fmt.Errorf("metrics: %w", err)
	}
	cp.srv.Metrics = cp.metrics
	cp.diags = &diagnostics{log: log.With("component", "config")}
	cp.analysis = &analyzeState{mesh: meshCfg}

	push := o.Push.withDefaults(o.Debounce)
	var expect []string
	if o.ConfigDir != "" {
		expect = []string{"file"} // the Kubernetes source is waited for by waitSynced
	}
	cp.store = store.NewWithOptions(log.With("component", "store"), store.Options{
		DebounceAfter: push.DebounceAfter, DebounceMax: push.DebounceMax, EDSDebounce: push.EDSDebounce, EDSInterval: push.EDSInterval,
		EndpointsOnly: model.EndpointsOnly, OnDebounce: cp.metrics.DebounceObserver(), Expect: expect,
	})
	cp.store.SetMesh(meshCfg)
	cp.files = file.New(o.ConfigDir, log.With("component", "source"))
	if o.PollInterval > 0 {
		cp.files.Interval = o.PollInterval
	}
	return cp, nil
}

// publish turns one store snapshot into the mesh the proxies get: build the model, record
// the diagnostics and analysis inputs, diff against the previous mesh so the cache
// recomputes only what changed, and push.
func (cp *controlPlane) publish(s *store.Snapshot) {
	m, md := model.Build(s.Objects, cp.mesh)
	m.SetMTLS(caServes(cp.o)) // ca.go: mutual TLS needs the workload certificates
	cp.analysis.set(s.Objects, s.Diagnostics)
	cp.diags.set(append(append([]config.Diagnostic(nil), s.Diagnostics...), md...), s.Version) // diagnostics.go
	ch := model.Diff(cp.prev, m)
	cp.prev = m
	cp.gen.cache.Update(m, ch)
	cp.gen.ready.Store(true)
	cp.srv.Push(ads.PushRequest{Version: s.Version, Start: s.Start, Full: ch.Config})
	if !cp.ready.Swap(true) {
		cp.log.Info("first configuration published", "version", s.Version, "objects", len(s.Objects), "ads", cp.lis.Addr().String())
		if cp.o.Ready != nil {
			cp.o.Ready(cp.lis.Addr().String())
		}
	}
}

// serveDebug serves the debug port (an index, /ready, /metrics, /debug/..., the dashboard)
// when one is configured; stop shuts it down.
func (cp *controlPlane) serveDebug(ctx context.Context, wg *sync.WaitGroup) (stop func(), err error) {
	if cp.o.DebugAddr == "" {
		return func() {}, nil
	}
	dl, err := net.Listen("tcp", cp.o.DebugAddr)
	if err != nil {
		return nil, fmt.Errorf("debug listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", debugIndex) // debug_index.go: what this port serves
	mux.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) {
		if !cp.ready.Load() {
			http.Error(w, "no configuration published yet", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("/debug/diagnostics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(cp.diags.get())
	})
	mux.HandleFunc("/debug/analyze", cp.analysis.serve)
	mux.Handle("/metrics", promhttp.HandlerFor(cp.reg, promhttp.HandlerOpts{}))
	mux.Handle("/debug/", cp.srv.DebugHandler())
	stopDashboard, err := startDashboard(ctx, wg, cp.o, mux, cp.srv, cp.analysis, cp.log) // dashboard.go
	if err != nil {
		_ = dl.Close()
		return nil, err
	}
	debugSrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = debugSrv.Serve(dl) }()
	return func() {
		sctx, c := context.WithTimeout(context.Background(), 2*time.Second)
		_ = debugSrv.Shutdown(sctx)
		c()
		stopDashboard()
	}, nil
}
