// Package discovery is the control plane's composition root, what `lucid discovery` runs:
//
//	source/{file,kube} → store (debounce, latest wins) → model.Build → model.Diff
//	  → translate.Cache.Update → ads.Push → per connection: translate.Cache.Parts
//
// It also serves the control plane's debug port: an index at /, /ready, /metrics (Istio's
// pilot_* metrics), /debug/syncz, /debug/config_dump, /debug/diagnostics, /debug/analyze,
// and the dashboard (/dashboard/, /debug/tap).
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

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lucid-mesh/lucid/internal/controlplane/ads"
	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/controlplane/model"
	"github.com/lucid-mesh/lucid/internal/controlplane/source/file"
	"github.com/lucid-mesh/lucid/internal/controlplane/store"
	"github.com/lucid-mesh/lucid/internal/controlplane/translate"
)

// Options configure the control plane.
type Options struct {
	ConfigDir  string
	MeshConfig string // MeshConfig YAML file; "" for Istio's defaults
	GRPCAddr   string // ADS, default 127.0.0.1:15010
	DebugAddr  string // debug HTTP, default 127.0.0.1:15014; "" disables
	Logger     *slog.Logger
	// PollInterval is how often the config directory is scanned (default 200ms).
	PollInterval time.Duration
	// Debounce is the store's quiet period (default 100ms); DebounceAfter wins when set.
	Debounce time.Duration
	// Push is how configuration changes are debounced (DefaultPush: Istio's variables).
	Push PushOptions
	// Ready, if set, is called once with the bound ADS address after the first push.
	Ready func(grpcAddr string)
	// Kube is the Kubernetes source (kube.go); with it, ConfigDir is optional.
	Kube KubeOptions
	// Webhook is the injection webhook and the probe-failure Events (webhook.go).
	Webhook WebhookOptions
	// DashboardAddr serves the web dashboard on its own address; "" serves it on the
	// debug port (dashboard.go).
	DashboardAddr string
	// CA is the mesh CA on the TLS port (ca.go).
	CA CAOptions
}

// generator implements ads.Generator over the newest mesh: translate.Cache hands every
// proxy its class's shared parts and its own.
type generator struct {
	cache translate.Cache
	ready atomic.Bool
}

func (g *generator) Generate(node *corepb.Node) (ads.Resources, error) {
	if !g.ready.Load() {
		return nil, ads.ErrNotReady
	}
	p, err := model.ParseNodeID(node.GetId())
	if err != nil {
		return nil, fmt.Errorf("node %q: %w", node.GetId(), err)
	}
	p.Labels = ads.NodeLabels(node) // Kubernetes gateways: labels from node metadata
	p.GRPC = ads.NodeGenerator(node) == "grpc"
	parts := g.cache.Parts(p)
	return ads.Resources{
		resourcev3.ListenerType: asParts(parts.Listeners),
		resourcev3.RouteType:    asParts(parts.Routes),
		resourcev3.ClusterType:  asParts(parts.Clusters),
		resourcev3.EndpointType: asParts(parts.Endpoints),
	}, nil
}

func asParts(gs []*translate.Group) []ads.Part {
	out := make([]ads.Part, len(gs))
	for i, g := range gs {
		out[i] = g
	}
	return out
}

// Run serves until ctx ends.
func Run(ctx context.Context, o Options) error {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.ConfigDir == "" && !o.Kube.Enabled {
		return errors.New("--config-dir or --kubernetes is required")
	}
	meshCfg, err := config.LoadMeshConfig(o.MeshConfig)
	if err != nil {
		return fmt.Errorf("--mesh-config: %w", err)
	}
	kr, err := newKubeRunner(o.Kube, meshCfg, log)
	if err != nil {
		return err
	}
	grpcAddr := o.GRPCAddr
	if grpcAddr == "" {
		grpcAddr = "127.0.0.1:15010"
	}
	lis, err := net.Listen("tcp", grpcAddr)
	if err != nil {
		return fmt.Errorf("ADS listener: %w", err)
	}

	gen := &generator{}
	srv := ads.New(gen, log.With("component", "ads"))
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics, err := ads.NewMetrics(srv, reg)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	srv.Metrics = metrics
	diags := &diagnostics{log: log.With("component", "config")}
	analysis := &analyzeState{mesh: meshCfg} // /debug/analyze: debug_analyze.go
	var ready atomic.Bool

	push := o.Push.withDefaults(o.Debounce)
	st := store.NewWithOptions(log.With("component", "store"), store.Options{
		DebounceAfter: push.DebounceAfter, DebounceMax: push.DebounceMax, EDSDebounce: push.EDSDebounce, EDSInterval: push.EDSInterval,
		EndpointsOnly: model.EndpointsOnly, OnDebounce: metrics.DebounceObserver(),
	})
	st.SetMesh(meshCfg)
	src := file.New(o.ConfigDir, log.With("component", "source"))
	if o.PollInterval > 0 {
		src.Interval = o.PollInterval
	}

	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopWebhook, err := startWebhook(ctx, o, srv, log) // webhook.go; before srv serves
	if err != nil {
		return err
	}
	defer stopWebhook()
	stopCA, err := startCA(ctx, o, meshCfg, srv, log) // ca.go
	if err != nil {
		return err
	}
	defer stopCA()
	errc := make(chan error, 4)
	wg.Add(3)
	go func() {
		defer wg.Done()
		if o.ConfigDir == "" || !kr.waitSynced(ctx) {
			return // no file source, or ctx ended before the Kubernetes source synced
		}
		errc <- src.Run(ctx, func(objs []*config.Object, d []config.Diagnostic) { st.Update("file", objs, d) })
	}()
	if kr != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- kr.run(ctx, st)
		}()
	}
	go func() {
		defer wg.Done()
		if !kr.waitSynced(ctx) {
			return // publish nothing before the Kubernetes caches are in
		}
		var prev *model.Mesh
		st.Run(ctx, func(s *store.Snapshot) {
			m, md := model.Build(s.Objects, meshCfg)
			m.SetMTLS(caServes(o)) // ca.go: mutual TLS needs the workload certificates
			analysis.set(s.Objects, s.Diagnostics)
			diags.set(append(append([]config.Diagnostic(nil), s.Diagnostics...), md...), s.Version) // diagnostics.go
			ch := model.Diff(prev, m)
			prev = m
			gen.cache.Update(m, ch)
			gen.ready.Store(true)
			srv.Push(ads.PushRequest{Version: s.Version, Start: s.Start, Full: ch.Config})
			if !ready.Swap(true) {
				log.Info("first configuration published", "version", s.Version, "objects", len(s.Objects), "ads", lis.Addr().String())
				if o.Ready != nil {
					o.Ready(lis.Addr().String())
				}
			}
		})
		errc <- nil
	}()
	go func() {
		defer wg.Done()
		errc <- srv.Serve(ctx, lis)
	}()

	var debugSrv *http.Server
	if o.DebugAddr != "" {
		dl, err := net.Listen("tcp", o.DebugAddr)
		if err != nil {
			cancel()
			wg.Wait()
			return fmt.Errorf("debug listener: %w", err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/{$}", debugIndex) // debug_index.go: what this port serves
		mux.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) {
			if !ready.Load() {
				http.Error(w, "no configuration published yet", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "ready")
		})
		mux.HandleFunc("/debug/diagnostics", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(diags.get())
		})
		mux.HandleFunc("/debug/analyze", analysis.serve)
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.Handle("/debug/", srv.DebugHandler())
		stopDashboard, err := startDashboard(ctx, &wg, o, mux, srv, analysis, log) // dashboard.go
		if err != nil {
			_ = dl.Close()
			cancel()
			wg.Wait()
			return err
		}
		defer stopDashboard()
		debugSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = debugSrv.Serve(dl) }()
	}
	log.Info("discovery started", "config-dir", o.ConfigDir, "kubernetes", o.Kube.Enabled, "ads", lis.Addr().String(), "debug", o.DebugAddr)

	var first error
	select {
	case <-ctx.Done():
	case first = <-errc:
	}
	cancel()
	if debugSrv != nil {
		sctx, c := context.WithTimeout(context.Background(), 2*time.Second)
		_ = debugSrv.Shutdown(sctx)
		c()
	}
	wg.Wait()
	if first != nil && !errors.Is(first, context.Canceled) {
		return first
	}
	return nil
}
