package discovery

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/controlplane/source/kube"
	"github.com/lucid-mesh/lucid/internal/controlplane/store"
	"github.com/lucid-mesh/lucid/internal/kube/kubeclient"
)

// KubeOptions configure the Kubernetes source (`lucid discovery --kubernetes`). Every
// replica reads the API server through its own informers and serves xDS from them; no
// leader is needed.
type KubeOptions struct {
	Enabled    bool   // --kubernetes
	Kubeconfig string // --kubeconfig; "" → $KUBECONFIG, in-cluster, ~/.kube/config
	// Clients, when set, are used instead of finding the API server (tests).
	Clients *kubeclient.Clients
	// CRDRecheck is how often missing Istio CRDs are looked for again (default 30 s).
	CRDRecheck time.Duration
}

// kubeRunner runs the Kubernetes source into the store under the source name "kube".
type kubeRunner struct {
	src *kube.Source
	// synced is closed after the first complete view reached the store; the file source
	// waits for it so the first configuration published contains both sources.
	synced chan struct{}
}

// newKubeRunner finds the API server and builds the source; nil when not enabled.
func newKubeRunner(o KubeOptions, mesh *meshv1alpha1.MeshConfig, log *slog.Logger) (*kubeRunner, error) {
	if !o.Enabled {
		return nil, nil
	}
	c := o.Clients
	if c == nil {
		var where kubeclient.Where
		var err error
		c, where, err = kubeclient.Load(o.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("--kubernetes: %w", err)
		}
		log.Info("Kubernetes API server", "host", c.Config.Host, "from", string(where))
	}
	src, err := kube.New(c, kube.Options{Logger: log.With("component", "kube"), Mesh: mesh, CRDRecheck: o.CRDRecheck})
	if err != nil {
		return nil, fmt.Errorf("--kubernetes: %w", err)
	}
	return &kubeRunner{src: src, synced: make(chan struct{})}, nil
}

// run feeds the store until ctx ends.
func (k *kubeRunner) run(ctx context.Context, st *store.Store) error {
	first := true
	return k.src.Run(ctx, func(objs []*config.Object, diags []config.Diagnostic) {
		st.Update("kube", objs, diags)
		if first {
			first = false
			close(k.synced)
		}
	})
}

// waitSynced blocks until k has delivered its first view (at once when k is nil) and
// reports false when ctx ended first.
func (k *kubeRunner) waitSynced(ctx context.Context) bool {
	if k == nil {
		return true
	}
	select {
	case <-k.synced:
		return true
	case <-ctx.Done():
		return false
	}
}
