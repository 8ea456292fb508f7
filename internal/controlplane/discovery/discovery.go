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
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/lucid-mesh/lucid/internal/contract/nds"
	"github.com/lucid-mesh/lucid/internal/controlplane/ads"
	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/controlplane/model"
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
	p.TProxy = ads.NodeInterceptionMode(node) == "TPROXY" // translate/capture.go: original_src
	parts := g.cache.Parts(p)
	res := ads.Resources{
		resourcev3.ListenerType: asParts(parts.Listeners),
		resourcev3.RouteType:    asParts(parts.Routes),
		resourcev3.ClusterType:  asParts(parts.Clusters),
		resourcev3.EndpointType: asParts(parts.Endpoints),
	}
	if capture, alloc := ads.NodeDNS(node); capture { // the agent's DNS proxy: Istio's name table
		res[nds.TypeURL] = []ads.Part{g.cache.NameTable(p, alloc)}
	}
	return res, nil
}

func asParts(gs []*translate.Group) []ads.Part {
	out := make([]ads.Part, len(gs))
	for i, g := range gs {
		out[i] = g
	}
	return out
}

// Run serves until ctx ends: it assembles the control plane (controlplane.go), starts the
// webhook and the CA, runs the sources, the store's publishing loop and the ADS server, and
// serves the debug port; the first error of any of them, or ctx, stops them all.
func Run(ctx context.Context, o Options) error {
	cp, err := newControlPlane(o)
	if err != nil {
		return err
	}
	log := cp.log

	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopWebhook, err := startWebhook(ctx, o, cp.mesh, cp.srv, log) // webhook.go; before srv serves
	if err != nil {
		_ = cp.lis.Close()
		return err
	}
	defer stopWebhook()
	stopCA, err := startCA(ctx, o, cp.mesh, cp.srv, log) // ca.go
	if err != nil {
		_ = cp.lis.Close()
		return err
	}
	defer stopCA()
	errc := make(chan error, 4)
	wg.Add(3)
	go func() {
		defer wg.Done()
		if o.ConfigDir == "" || !cp.kube.waitSynced(ctx) {
			return // no file source, or ctx ended before the Kubernetes source synced
		}
		errc <- cp.files.Run(ctx, func(objs []*config.Object, d []config.Diagnostic) { cp.store.Update("file", objs, d) })
	}()
	if cp.kube != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- cp.kube.run(ctx, cp.store)
		}()
	}
	go func() {
		defer wg.Done()
		if !cp.kube.waitSynced(ctx) {
			return // publish nothing before the Kubernetes caches are in
		}
		cp.store.Run(ctx, cp.publish)
		errc <- nil
	}()
	go func() {
		defer wg.Done()
		errc <- cp.srv.Serve(ctx, cp.lis)
	}()

	stopDebug, err := cp.serveDebug(ctx, &wg) // controlplane.go
	if err != nil {
		cancel()
		wg.Wait()
		return err
	}
	log.Info("discovery started", "config-dir", o.ConfigDir, "kubernetes", o.Kube.Enabled, "ads", cp.lis.Addr().String(), "debug", o.DebugAddr)

	var first error
	select {
	case <-ctx.Done():
	case first = <-errc:
	}
	cancel()
	stopDebug()
	wg.Wait()
	if first != nil && !errors.Is(first, context.Canceled) {
		return first
	}
	return nil
}
