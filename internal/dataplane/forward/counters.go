package forward

import (
	"github.com/lucid-mesh/lucid/internal/dataplane/cluster"
)

// The cluster's and its hosts' counters an exchange feeds (Envoy's upstream_rq_* and
// upstream_cx_* stats; /clusters and /stats show them).

// connCounters feeds a host's and its cluster's connection stats (pool.Counters). It is
// the host's stats themselves, which know their cluster's: one pointer, so passing it to
// the pool costs no allocation.
type connCounters cluster.HostStats

// hostCounters are the connection counters of h.
func hostCounters(h *cluster.Host) *connCounters { return (*connCounters)(h.Stats) }

// both are the host's stats and its cluster's.
func (k *connCounters) both() (*cluster.HostStats, *cluster.Stats) {
	h := (*cluster.HostStats)(k)
	c := h.ClusterStats()
	if c == nil { // a host the cluster manager did not make: its cluster is not counted
		c = &uncounted
	}
	return h, c
}

var uncounted cluster.Stats

func (k *connCounters) ConnOpened() {
	h, c := k.both()
	h.CxTotal.Add(1)
	h.CxActive.Add(1)
	c.UpstreamCxTotal.Add(1)
	c.UpstreamCxActive.Add(1)
}

func (k *connCounters) ConnClosed() {
	h, c := k.both()
	h.CxActive.Add(-1)
	c.UpstreamCxActive.Add(-1)
}

func (k *connCounters) PendingStarted() {
	_, c := k.both()
	c.UpstreamRqPendingTotal.Add(1)
	c.UpstreamRqPendingActive.Add(1)
}

func (k *connCounters) PendingEnded() {
	_, c := k.both()
	c.UpstreamRqPendingActive.Add(-1)
}

func (k *connCounters) ConnectFailed() {
	h, c := k.both()
	h.CxConnectFail.Add(1)
	c.UpstreamCxConnectFail.Add(1)
}

// charge counts one upstream response code.
func (x *exchange) charge(code int, host *cluster.Host) {
	s := x.cl.Stats()
	s.UpstreamRqCompleted.Add(1)
	switch code / 100 {
	case 2:
		s.UpstreamRq2xx.Add(1)
	case 3:
		s.UpstreamRq3xx.Add(1)
	case 4:
		s.UpstreamRq4xx.Add(1)
	case 5:
		s.UpstreamRq5xx.Add(1)
	}
	if code >= 500 {
		host.Stats.RqError.Add(1)
	} else {
		host.Stats.RqSuccess.Add(1)
	}
}

// chargeLocal counts a local reply for an upstream failure as Envoy does (upstream_rq_5xx).
func (x *exchange) chargeLocal(code int) {
	s := x.cl.Stats()
	s.UpstreamRqCompleted.Add(1)
	if code >= 500 {
		s.UpstreamRq5xx.Add(1)
	}
}
