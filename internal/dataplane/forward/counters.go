package forward

import (
	"net"

	"github.com/lucid-mesh/lucid/internal/dataplane/cluster"
)

// The cluster's and its hosts' counters an exchange feeds (Envoy's upstream_rq_* and
// upstream_cx_* stats; /clusters and /stats show them).

// connCounters feeds a host's and its cluster's connection stats, and tells the attempt
// obs (when set) which connection carries its request (pool.ConnObserver).
type connCounters struct {
	h   *cluster.HostStats
	c   *cluster.Stats
	obs *attempt
}

func (k connCounters) UpstreamConn(c net.Conn, local string) {
	if k.obs != nil {
		k.obs.UpstreamConn(c, local)
	}
}

func (k connCounters) ConnOpened() {
	k.h.CxTotal.Add(1)
	k.h.CxActive.Add(1)
	k.c.UpstreamCxTotal.Add(1)
	k.c.UpstreamCxActive.Add(1)
}

func (k connCounters) ConnClosed() {
	k.h.CxActive.Add(-1)
	k.c.UpstreamCxActive.Add(-1)
}

func (k connCounters) PendingStarted() {
	k.c.UpstreamRqPendingTotal.Add(1)
	k.c.UpstreamRqPendingActive.Add(1)
}

func (k connCounters) PendingEnded() { k.c.UpstreamRqPendingActive.Add(-1) }

func (k connCounters) ConnectFailed() {
	k.h.CxConnectFail.Add(1)
	k.c.UpstreamCxConnectFail.Add(1)
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
