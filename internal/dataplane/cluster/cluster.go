package cluster

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// Cluster is one upstream cluster as of one Update. Its configuration and host list never
// change; only load-balancer state and stats do. All methods are safe for concurrent use.
type Cluster struct {
	m     *Manager
	cfg   *resource.Cluster
	stats *Stats    // shared with the previous and next Cluster of the same name
	orig  *origDsts // ORIGINAL_DST host cache, shared like stats; nil for other types
	det   *detector // outlier detector, shared like stats (outlier.go)

	hosts []*Host
	// usable are the hosts Pick chooses from: Usable(), weight > 0, and in the lowest
	// priority that has any such host (Envoy fails over by priority; Lucid does not spread
	// load across priorities by the overprovisioning factor).
	usable       []*Host
	equalWeights bool
	cumWeights   []uint64 // cumulative weights of usable, for weighted picks
	rr           atomic.Uint64
	swrr         *smoothRR // weighted round robin; nil with equal weights
	hashed       hashTable // RING_HASH / MAGLEV table, built on first use (hash.go)
}

func newCluster(m *Manager, cfg *resource.Cluster, eps []resource.Endpoint, prev *Cluster) *Cluster {
	c := &Cluster{m: m, cfg: cfg, stats: new(Stats)}
	prevByAddr := map[string]*Host{}
	if prev != nil {
		c.stats = prev.stats
		c.orig = prev.orig
		c.det = prev.det
		for _, h := range prev.hosts {
			if _, dup := prevByAddr[h.Addr]; !dup {
				prevByAddr[h.Addr] = h
			}
		}
	}
	if cfg.Type == resource.OriginalDst && c.orig == nil {
		c.orig = &origDsts{}
	}
	if c.det == nil {
		c.det = &detector{now: time.Now, start: time.Now()}
	}
	c.hosts = make([]*Host, 0, len(eps))
	for i := range eps {
		ep := &eps[i]
		addr := endpointAddr(ep)
		if addr == "" {
			m.log.Warn("endpoint without address ignored", "cluster", cfg.Name)
			continue
		}
		h := prevByAddr[addr]
		switch {
		case h == nil:
			h = &Host{Addr: addr, Endpoint: *ep, Stats: &HostStats{cluster: c.stats}, od: new(hostOutlier)}
		case !sameEndpoint(&h.Endpoint, ep):
			h = &Host{Addr: addr, Endpoint: *ep, Stats: h.Stats, od: h.od}
		}
		delete(prevByAddr, addr) // a duplicate address later in the list is another host
		c.hosts = append(c.hosts, h)
	}
	for addr := range prevByAddr {
		m.hostGone(cfg.Name, addr) // removal.go: left the cluster
	}
	c.selectUsable()
	c.stats.MembershipTotal.Store(int64(len(c.hosts)))
	c.stats.MembershipHealthy.Store(int64(len(c.usable)))
	return c
}

func (c *Cluster) selectUsable() {
	prio, found := uint32(0), false
	for _, h := range c.hosts {
		if h.Endpoint.Usable() && h.Endpoint.Weight > 0 && (!found || h.Endpoint.Priority < prio) {
			prio, found = h.Endpoint.Priority, true
		}
	}
	if !found {
		return
	}
	c.equalWeights = true
	var cum uint64
	for _, h := range c.hosts {
		if h.Endpoint.Usable() && h.Endpoint.Weight > 0 && h.Endpoint.Priority == prio {
			if len(c.usable) > 0 && h.Endpoint.Weight != c.usable[0].Endpoint.Weight {
				c.equalWeights = false
			}
			c.usable = append(c.usable, h)
			cum += uint64(h.Endpoint.Weight)
			c.cumWeights = append(c.cumWeights, cum)
		}
	}
	if !c.equalWeights {
		c.swrr = &smoothRR{current: make([]int64, len(c.usable))}
	}
}

// Name is the cluster's name, e.g. "outbound|9080|v1|reviews.default.svc.cluster.local".
func (c *Cluster) Name() string { return c.cfg.Name }

// Config is the cluster's configuration.
func (c *Cluster) Config() *resource.Cluster { return c.cfg }

// Stats are the cluster's stats; the same *Stats for every update of this cluster name.
func (c *Cluster) Stats() *Stats { return c.stats }

// Hosts returns the cluster's hosts, usable or not: its EDS endpoints, or its load
// assignment, in configuration order; for ORIGINAL_DST, the destinations seen so far, sorted
// by address. The slice must not be modified.
func (c *Cluster) Hosts() []*Host {
	if c.orig != nil {
		return c.orig.hosts()
	}
	return c.hosts
}

// origDsts caches ORIGINAL_DST hosts by address so their stats accumulate. It is bounded:
// when it holds maxOrigDsts hosts it starts over (Envoy instead drops hosts idle for
// cleanup_interval).
type origDsts struct {
	byAddr sync.Map // string → *Host
	n      atomic.Int64
}

const maxOrigDsts = 1024

func (o *origDsts) get(addr string, ep resource.Endpoint, stats *Stats) *Host {
	if h, ok := o.byAddr.Load(addr); ok {
		return h.(*Host)
	}
	if o.n.Add(1) > maxOrigDsts {
		o.byAddr.Clear()
		o.n.Store(1)
	}
	h, _ := o.byAddr.LoadOrStore(addr, &Host{Addr: addr, Endpoint: ep, Stats: &HostStats{cluster: stats}})
	return h.(*Host)
}

func (o *origDsts) hosts() []*Host {
	var hs []*Host
	o.byAddr.Range(func(_, v any) bool {
		hs = append(hs, v.(*Host))
		return true
	})
	slices.SortFunc(hs, func(a, b *Host) int { return cmp.Compare(a.Addr, b.Addr) })
	return hs
}
