package agent

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/cluster"
	"github.com/lucid-mesh/lucid/internal/dataplane/stats"
	"github.com/lucid-mesh/lucid/internal/dataplane/tracing"
)

// newTracers returns the proxy's tracers (one per tracing provider its listeners name,
// started on first use), which reach their collectors through the proxy's own clusters,
// and counts their spans in the proxy's stats (tracing.<kind>.spans_{sent,dropped,failed}).
// The returned func exports what is still queued (at most 2 s) and stops them.
func newTracers(o Options, clusters *cluster.Manager, st *stats.Stats, log *slog.Logger) (*tracing.Providers, func()) {
	canonical := cmp.Or(o.Labels["service.istio.io/canonical-name"], o.Labels["app"], o.Workload)
	node := tracing.Node{
		ID: nodeIDOf(o), ServiceName: canonical + "." + o.Namespace, MeshID: "cluster.local", ClusterID: "Kubernetes",
		Namespace: o.Namespace, CanonicalService: canonical,
		CanonicalRevision: cmp.Or(o.Labels["service.istio.io/canonical-revision"], o.Labels["version"], "latest"),
	}
	resolve := func(name string) (string, error) {
		cl := clusters.Get(name)
		if cl == nil {
			return "", errors.New("no such cluster")
		}
		h, err := cl.Pick(cluster.PickContext{})
		if err != nil {
			return "", err
		}
		return h.Addr, nil
	}
	ps := tracing.NewProviders(node, resolve, tracing.BatchOptions{Log: log})
	st.AddCounters(ps.EmitCounters)
	return ps, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		ps.Close(ctx)
	}
}
