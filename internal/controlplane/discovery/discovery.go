// Package discovery is the control plane's composition root, what `lucid discovery` runs:
//
//	source/file → store (debounce, latest wins) → model.Build → ads.Push → translate per proxy
//
// It also serves the control plane's debug port: an index at /, /ready, /debug/syncz,
// /debug/config_dump, /debug/diagnostics, /debug/analyze, and the dashboard (/dashboard/,
// /debug/tap).
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
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

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
	// Debounce is the store's quiet period (default 100ms).
	Debounce time.Duration
	// Ready, if set, is called once with the bound ADS address after the first push.
	Ready func(grpcAddr string)
	// Kube is the Kubernetes source (kube.go); with it, ConfigDir is optional.
	Kube KubeOptions
	// Webhook is the injection webhook and the probe-failure Events (webhook.go).
	Webhook WebhookOptions
	// DashboardAddr serves the web dashboard on its own address; "" serves it on the
	// debug port (dashboard.go).
	DashboardAddr string
}

// generator implements ads.Generator over the newest mesh. Its cache builds what proxies
// share (outbound clusters, endpoint assignments) once per mesh.
type generator struct {
	mesh  atomic.Pointer[model.Mesh]
	cache translate.Cache
}

func (g *generator) Generate(node *corepb.Node) (map[string][]types.Resource, error) {
	m := g.mesh.Load()
	if m == nil {
		return nil, errors.New("no configuration built yet")
	}
	p, err := model.ParseNodeID(node.GetId())
	if err != nil {
		return nil, fmt.Errorf("node %q: %w", node.GetId(), err)
	}
	p.Labels = ads.NodeLabels(node) // Kubernetes gateways: labels from node metadata
	res := g.cache.Generate(m, m.ResolveProxy(p))
	return map[string][]types.Resource{
		resourcev3.ListenerType: asResources(res.Listeners),
		resourcev3.RouteType:    asResources(res.Routes),
		resourcev3.ClusterType:  asResources(res.Clusters),
		resourcev3.EndpointType: asResources(res.Endpoints),
	}, nil
}

func asResources(ms []proto.Message) []types.Resource {
	out := make([]types.Resource, len(ms))
	for i, m := range ms {
		out[i] = m
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
	diags := &diagnostics{log: log.With("component", "config")}
	analysis := &analyzeState{mesh: meshCfg} // /debug/analyze: debug_analyze.go
	var ready atomic.Bool

	st := store.New(log.With("component", "store"), o.Debounce)
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
		st.Run(ctx, func(s *store.Snapshot) {
			m, md := model.Build(s.Objects, meshCfg)
			analysis.set(s.Objects, s.Diagnostics)
			diags.set(append(append([]config.Diagnostic(nil), s.Diagnostics...), md...), s.Version) // diagnostics.go
			gen.mesh.Store(m)
			srv.Push(s.Version)
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
