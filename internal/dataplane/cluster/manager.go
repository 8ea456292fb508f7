package cluster

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// Manager owns the proxy's clusters. Update swaps the whole set atomically: readers (Get,
// All, Pick) never lock, and a request that holds a *Cluster keeps using it after an update.
type Manager struct {
	log *slog.Logger
	rnd func(n uint64) uint64 // uniform in [0,n); math/rand/v2 unless a test sets it

	mu    sync.Mutex // serializes Update
	state atomic.Pointer[clusterSet]
	drain drainState // removal.go: ending streams on removed hosts
	// removed is called by Update for the hosts that left each cluster (OnHostsRemoved);
	// gone collects them while Update runs (guarded by mu).
	removed atomic.Pointer[func(cluster string, addrs []string)]
	gone    map[string][]string
}

type clusterSet struct {
	byName map[string]*Cluster
	sorted []*Cluster
}

// NewManager returns a Manager with no clusters. A nil log discards.
func NewManager(log *slog.Logger) *Manager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{log: log, rnd: rand.Uint64N}
	m.state.Store(&clusterSet{byName: map[string]*Cluster{}})
	return m
}

// Update installs clusters and their endpoints (from one resource.Snapshot) atomically for
// readers. EDS clusters take their hosts from endpoints[ServiceName] (or [Name]), the others
// from LoadAssignment. A cluster keeps its Stats while its name stays; a host keeps its
// HostStats while its cluster keeps its address (see Host).
func (m *Manager) Update(clusters map[string]*resource.Cluster, endpoints map[string]*resource.Endpoints) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.state.Load()
	next := &clusterSet{byName: make(map[string]*Cluster, len(clusters)), sorted: make([]*Cluster, 0, len(clusters))}
	var added []string
	for name, cfg := range clusters {
		if cfg == nil {
			continue
		}
		prev := old.byName[name]
		if prev == nil {
			added = append(added, name)
		}
		c := newCluster(m, cfg, clusterEndpoints(cfg, endpoints), prev)
		next.byName[name] = c
		next.sorted = append(next.sorted, c)
	}
	slices.SortFunc(next.sorted, func(a, b *Cluster) int { return strings.Compare(a.Name(), b.Name()) })
	var removed []string
	for name := range old.byName {
		if next.byName[name] == nil {
			removed = append(removed, name)
		}
	}
	for _, name := range removed {
		for _, h := range old.byName[name].hosts {
			m.hostGone(name, h.Addr)
		}
	}
	m.state.Store(next)
	m.drainRemoved(old, next)
	m.notifyRemoved()
	if len(added) > 0 || len(removed) > 0 {
		m.log.Info("clusters updated", "total", len(next.sorted), "added", len(added), "removed", len(removed))
		if m.log.Enabled(context.Background(), slog.LevelDebug) {
			slices.Sort(added)
			slices.Sort(removed)
			m.log.Debug("cluster names updated", "added", added, "removed", removed)
		}
	}
}

// clusterEndpoints returns the endpoints a cluster's hosts come from.
func clusterEndpoints(cfg *resource.Cluster, endpoints map[string]*resource.Endpoints) []resource.Endpoint {
	switch cfg.Type {
	case resource.EDS:
		name := cfg.ServiceName
		if name == "" {
			name = cfg.Name
		}
		if e := endpoints[name]; e != nil {
			return e.Endpoints
		}
		return nil
	case resource.OriginalDst:
		return nil
	}
	if cfg.LoadAssignment != nil {
		return cfg.LoadAssignment.Endpoints
	}
	return nil
}

// Get returns the named cluster, nil when there is none (Envoy's NC).
func (m *Manager) Get(name string) *Cluster {
	return m.state.Load().byName[name]
}

// All returns every cluster, sorted by name. The slice must not be modified.
func (m *Manager) All() []*Cluster {
	return m.state.Load().sorted
}
