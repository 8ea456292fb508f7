package agent

import (
	"sort"
	"strings"

	"github.com/lucid-mesh/lucid/internal/contract"
	"github.com/lucid-mesh/lucid/internal/dataplane/admin"
	"github.com/lucid-mesh/lucid/internal/dataplane/cluster"
	"github.com/lucid-mesh/lucid/internal/dataplane/pool"
	"github.com/lucid-mesh/lucid/internal/dataplane/proxy"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/stats"
)

// clusterStatuses adapts the cluster manager's runtime state (and the pools' learned idle
// timeouts) to admin's /clusters view.
func clusterStatuses(m *cluster.Manager, pools *pool.Set) []admin.ClusterStatus {
	all := m.All()
	out := make([]admin.ClusterStatus, 0, len(all))
	for _, c := range all {
		cfg := c.Config()
		cs := admin.ClusterStatus{
			Name: c.Name(), AddedViaAPI: true,
			MaxConnections: threshold(cfg.MaxConnections, 1024), MaxPendingRequests: threshold(cfg.MaxPendingRequests, 1024),
			MaxRequests: threshold(cfg.MaxRequests, 1024), MaxRetries: threshold(cfg.MaxRetries, 3),
		}
		for _, h := range c.Hosts() {
			ep := h.Endpoint
			hs := admin.HostStatus{
				Address: h.Addr, Hostname: ep.Hostname, Weight: ep.Weight, Priority: ep.Priority, Labels: ep.Labels,
				EDSHealth: ep.Health.String(),
				Stats: map[string]uint64{
					"cx_total": uint64(h.Stats.CxTotal.Load()), "cx_active": uint64(h.Stats.CxActive.Load()),
					"cx_connect_fail": uint64(h.Stats.CxConnectFail.Load()), "rq_total": uint64(h.Stats.RqTotal.Load()),
					"rq_timeout": uint64(h.Stats.RqTimeout.Load()), "rq_success": uint64(h.Stats.RqSuccess.Load()),
					"rq_error": uint64(h.Stats.RqError.Load()), "rq_active": uint64(h.Stats.RqActive.Load()),
				},
			}
			if !ep.Usable() {
				hs.HealthFlags = append(hs.HealthFlags, contract.FailedEDSHealth)
			}
			if ep.Health == resource.Draining {
				hs.HealthFlags = append(hs.HealthFlags[:0], contract.EDSStatusDraining)
			}
			if h.Ejected() {
				hs.HealthFlags = append(hs.HealthFlags, contract.FailedOutlierCheck)
			}
			parts := strings.SplitN(ep.Locality, "/", 3)
			for len(parts) < 3 {
				parts = append(parts, "")
			}
			hs.Region, hs.Zone, hs.SubZone = parts[0], parts[1], parts[2]
			if i, ok := pools.IdleInfo(c.Name(), h.Addr); ok {
				hs.Idle = idleTimeout(i)
			}
			cs.Hosts = append(cs.Hosts, hs)
		}
		out = append(out, cs)
	}
	return out
}

func idleTimeout(i pool.IdleInfo) *admin.IdleTimeout {
	return &admin.IdleTimeout{Timeout: i.Timeout, Description: i.String(), Closes: i.Closes, ReuseLimit: i.ReuseLimit}
}

func threshold(v uint32, def uint64) uint64 {
	if v == 0 {
		return def
	}
	return uint64(v)
}

func listenerStatuses(p *proxy.Proxy) []admin.ListenerStatus {
	snap := p.Snapshot()
	names := make([]string, 0, len(snap.Listeners))
	for n := range snap.Listeners {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]admin.ListenerStatus, 0, len(names))
	for _, n := range names {
		out = append(out, admin.ListenerStatus{Name: n, Address: snap.Listeners[n].Address.String()})
	}
	return out
}

func clusterCounters(m *cluster.Manager) stats.CounterSource {
	return clusterStats(m, false)
}

func clusterGauges(m *cluster.Manager) stats.CounterSource {
	return clusterStats(m, true)
}

func clusterStats(m *cluster.Manager, wantGauges bool) stats.CounterSource {
	return func(emit func(string, uint64)) {
		for _, c := range m.All() {
			prefix := "cluster." + c.Name() + "."
			c.Stats().Each(func(name string, v uint64) {
				if cluster.IsGauge(name) == wantGauges {
					emit(prefix+name, v)
				}
			})
		}
	}
}

func formatLabels(l map[string]string) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + l[k]
	}
	return strings.Join(parts, ",")
}
