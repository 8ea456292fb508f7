package proxy

import (
	"errors"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/cluster"
	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// serveTCP runs a tcp_proxy chain: each accepted connection is piped to a host of the
// chain's cluster (see proxyTCP).
func (p *Proxy) serveTCP(sk *socket) error {
	for {
		c, err := sk.ln.Accept()
		if err != nil {
			return err
		}
		sk.tcpMu.Lock()
		sk.tcpLive[c] = struct{}{}
		sk.tcpConns.Add(1)
		sk.tcpMu.Unlock()
		go func() {
			defer func() {
				sk.tcpMu.Lock()
				delete(sk.tcpLive, c)
				sk.tcpMu.Unlock()
				sk.tcpConns.Done()
			}()
			p.pipeTCP(sk, c)
		}()
	}
}

func (p *Proxy) pipeTCP(sk *socket, down net.Conn) {
	defer down.Close()
	t := p.cur.Load()
	tg := sk.target.Load()
	l := t.snap.Listeners[tg.listener]
	var tp *resource.TCPProxy
	if l != nil {
		if fc := ChainFor(l, tg.chainPort); fc != nil {
			tp = fc.TCP
		}
	}
	p.proxyTCP(down, tp, tcpTarget{listener: tg.listener, direction: direction(l), originalDst: sk.addr.String()})
}

// tcpTarget is where an opaque connection came in.
type tcpTarget struct {
	listener    string
	direction   string
	originalDst string // "host:port" the client addressed (ORIGINAL_DST clusters)
}

// proxyTCP runs Envoy's tcp_proxy for one downstream connection: pick a host of the
// chain's cluster, connect (the cluster's connect timeout and keepalive), pipe both ways
// with half-close, close both sides after idle_timeout without a byte (Envoy default 1 h;
// DestinationRule tcp.idleTimeout), refuse connections over the cluster's max_connections
// (UO), end the connection when its host leaves the cluster (after the drain grace
// period), log one access-log line when it ends (empty method, as Istio's TCP log), and
// count Istio's istio_tcp_* metrics (forward.OpenConnection).
func (p *Proxy) proxyTCP(down net.Conn, tp *resource.TCPProxy, tg tcpTarget) {
	info := &streaminfo.Info{Start: time.Now(), Direction: tg.direction, UpstreamServiceTime: -1}
	info.DownstreamLocalAddress, _ = netip.ParseAddrPort(down.LocalAddr().String())
	info.DownstreamRemoteAddress, _ = netip.ParseAddrPort(down.RemoteAddr().String())
	var metrics forward.ConnectionCounter // istio_tcp_*: opened once the upstream answers
	defer func() {
		info.Duration = time.Since(info.Start)
		if metrics == nil { // refused before an upstream: opened and closed with its flag
			metrics = p.opts.Forwarder.OpenConnection(info)
		}
		metrics.Close()
		if p.opts.Forwarder != nil {
			p.opts.Forwarder.ObserveConnection(info)
		}
	}()
	fail := func(flag streaminfo.Flag, details, why string) {
		info.Flags |= flag
		info.ResponseCodeDetails = details
		info.LucidError = flag.String() + ": " + why
		p.log.Debug("tcp: connection refused by the proxy", "listener", tg.listener, "error", info.LucidError)
	}
	if tp == nil {
		fail(streaminfo.NoRouteFound, "filter_chain_not_found", "no tcp_proxy chain on listener "+tg.listener+" for "+tg.originalDst)
		return
	}
	name := tcpCluster(tp)
	info.UpstreamCluster = name
	cl := p.opts.Clusters.Get(name)
	if cl == nil {
		fail(streaminfo.NoClusterFound, "cluster_not_found", "cluster \""+name+"\" not found")
		return
	}
	ci := cl.Config().Info
	info.DestinationService, info.DestinationServiceName, info.DestinationServiceNamespace = ci.ServiceHost, ci.ServiceName, ci.ServiceNamespace
	stats := cl.Stats()
	if m := cl.Config().MaxConnections; m > 0 && m < math.MaxUint32 && stats.UpstreamCxActive.Load() >= int64(m) {
		fail(streaminfo.UpstreamOverflow, "upstream_cx_overflow", "cluster "+name+" already has its maximum of "+strconv.FormatUint(uint64(m), 10)+" connections (circuit breaker max_connections)")
		return
	}
	h, err := cl.Pick(cluster.PickContext{OriginalDst: tg.originalDst})
	if err != nil {
		var nh *cluster.NoHealthyError
		why := err.Error()
		if errors.As(err, &nh) {
			why = nh.Explanation
		}
		fail(streaminfo.NoHealthyUpstream, "no_healthy_upstream", why)
		return
	}
	info.UpstreamHost = h.Addr
	h.RequestStart()
	defer h.RequestEnd()
	d := p.opts.Pools.Dialer(cl.Config(), h.Addr)
	up, err := d.Dial("tcp", h.Addr)
	if err != nil {
		h.Stats.CxConnectFail.Add(1)
		stats.UpstreamCxConnectFail.Add(1)
		fail(streaminfo.UpstreamConnectionFailure, "upstream_connect_failed", "connect to "+h.Addr+" for cluster "+name+" failed: "+connectCause(err))
		info.UpstreamTransportFailureReason = connectCause(err)
		return
	}
	defer up.Close()
	h.Stats.CxTotal.Add(1)
	h.Stats.CxActive.Add(1)
	stats.UpstreamCxTotal.Add(1)
	stats.UpstreamCxActive.Add(1)
	defer func() {
		h.Stats.CxActive.Add(-1)
		stats.UpstreamCxActive.Add(-1)
	}()
	info.UpstreamLocalAddress = up.LocalAddr().String()

	var drained atomic.Pointer[string]
	stop := h.Track(cluster.TCPConnection, func(reason string) {
		drained.Store(&reason)
		_ = up.Close()
		_ = down.Close()
	})
	defer stop()
	metrics = p.opts.Forwarder.OpenConnection(info)
	res := forward.Pipe(forward.CountConn(down, metrics), up, tp.IdleTimeout)
	info.BytesReceived, info.BytesSent = res.Received, res.Sent
	switch {
	case drained.Load() != nil:
		info.Flags |= streaminfo.LocalReset
		info.ConnectionTerminationDetails = "upstream_host_removed"
		info.LucidError = "LR: " + *drained.Load()
	case res.IdleTimeout:
		info.ConnectionTerminationDetails = "idle_timeout"
		info.Notes = append(info.Notes, "closed after the tcp_proxy idle timeout "+tp.IdleTimeout.String()+" without a byte either way")
	case res.UpstreamErr != nil:
		info.Flags |= streaminfo.UpstreamConnectionTermination
		info.LucidError = "UC: upstream " + h.Addr + " (cluster " + name + ") connection failed: " + res.UpstreamErr.Error()
	}
}

// tcpCluster is the chain's cluster, or one of its weighted clusters by weight.
func tcpCluster(tp *resource.TCPProxy) string {
	if len(tp.WeightedClusters) == 0 {
		return tp.Cluster
	}
	var total uint64
	for _, w := range tp.WeightedClusters {
		total += uint64(w.Weight)
	}
	if total == 0 {
		return tp.WeightedClusters[0].Name
	}
	n := rand.Uint64N(total)
	for _, w := range tp.WeightedClusters {
		if n < uint64(w.Weight) {
			return w.Name
		}
		n -= uint64(w.Weight)
	}
	return tp.WeightedClusters[len(tp.WeightedClusters)-1].Name
}

// connectCause renders a dial error as Envoy's transport failure reason.
func connectCause(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "delayed connect error: Connection refused"
	case errors.As(err, &ne) && ne.Timeout():
		return "connection timeout"
	}
	return err.Error()
}
