package forward

import (
	"errors"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/cluster"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// Envoy's tcp_proxy: a peer of the router over the same cluster manager and pools. The
// listener (proxy) hands over an accepted connection, or a CONNECT tunnel (tunnel.go), and
// the chain's TCPProxy; everything after that (the cluster, its circuit breaker, the host,
// the upstream connection, the pipe, and the record the observers get) is decided here.

// ServeTCP runs tcp_proxy tp for one downstream connection that came in on in (Listener,
// Direction and OriginalDst are used; the addresses are down's): pick a host of the
// chain's cluster, connect (the cluster's connect timeout and keepalive), pipe both ways
// with half-close, close both sides after idle_timeout without a byte (Envoy default 1 h;
// DestinationRule tcp.idleTimeout), refuse connections over the cluster's max_connections
// (UO), end the connection when its host leaves the cluster (after the drain grace
// period), hand one record to the connection observers when it ends (the access log's
// line with an empty method, as Istio's TCP log), and count Istio's istio_tcp_* metrics.
// tp nil (the listener's chain went away) closes the connection with NR.
func (f *Forwarder) ServeTCP(down net.Conn, tp *resource.TCPProxy, in Inbound) {
	info := &streaminfo.Info{Start: time.Now(), Direction: in.Direction, UpstreamServiceTime: -1}
	info.DownstreamLocalAddress, _ = netip.ParseAddrPort(down.LocalAddr().String())
	info.DownstreamRemoteAddress, _ = netip.ParseAddrPort(down.RemoteAddr().String())
	var metrics ConnectionCounter // istio_tcp_*: opened once the upstream answers
	defer func() {
		info.Duration = time.Since(info.Start)
		if metrics == nil { // refused before an upstream: opened and closed with its flag
			metrics = f.openConnection(info)
		}
		metrics.Close()
		f.observeConnection(info)
	}()
	fail := func(flag streaminfo.Flag, details, why string) {
		info.Flags |= flag
		info.ResponseCodeDetails = details
		info.LucidError = flag.String() + ": " + why
		f.log.Debug("tcp: connection refused by the proxy", "listener", in.Listener, "error", info.LucidError)
	}
	if tp == nil {
		fail(streaminfo.NoRouteFound, "filter_chain_not_found", "no tcp_proxy chain on listener "+in.Listener+" for "+in.OriginalDst)
		return
	}
	name := tcpCluster(tp)
	info.UpstreamCluster = name
	cl := f.o.Clusters.Get(name)
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
	h, err := cl.Pick(cluster.PickContext{OriginalDst: in.OriginalDst})
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
	d := f.o.Pools.Dialer(cl.Config(), h.Addr)
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

	metrics = f.openConnection(info)
	res, gone := pipeOnHost(h, cluster.TCPConnection, countConn(down, metrics), up, tp.IdleTimeout)
	info.BytesReceived, info.BytesSent = res.Received, res.Sent
	switch {
	case gone != nil:
		info.Flags |= streaminfo.LocalReset
		info.ConnectionTerminationDetails = "upstream_host_removed"
		info.LucidError = "LR: " + *gone
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
