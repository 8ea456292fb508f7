package forward

import (
	"crypto/tls"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/cluster"
	"github.com/lucid-mesh/lucid/internal/dataplane/pool"
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
// line with an empty method, as Istio's TCP log, to the chain's access logs), and count
// Istio's istio_tcp_* metrics.
// tp nil (the listener's chain went away) closes the connection with NR.
func (f *Forwarder) ServeTCP(down net.Conn, tp *resource.TCPProxy, in Inbound) {
	info := &streaminfo.Info{Start: time.Now(), Direction: in.Direction, UpstreamServiceTime: -1}
	info.DownstreamLocalAddress, _ = netip.ParseAddrPort(down.LocalAddr().String())
	info.DownstreamRemoteAddress, _ = netip.ParseAddrPort(down.RemoteAddr().String())
	if !in.LocalAddr.IsValid() {
		in.LocalAddr = info.DownstreamLocalAddress // loop.go: the listener it came in on
	}
	if in.Direction == "outbound" {
		info.Source = f.o.Self
	} else {
		info.Destination = f.o.Self
		recordPeer(info, in.Peer) // peer.go: the downstream's certificate
	}
	if tc, ok := down.(*tls.Conn); ok { // the chain terminated TLS (inbound mTLS, a gateway)
		cs := tc.ConnectionState()
		info.RequestedServerName, info.MTLS = cs.ServerName, info.MTLS || len(cs.PeerCertificates) > 0
	}
	var metrics ConnectionCounter // istio_tcp_*: opened once the upstream answers
	defer func() {
		info.Duration = time.Since(info.Start)
		if metrics == nil { // refused before an upstream: opened and closed with its flag
			metrics = f.openConnection(info)
		}
		metrics.Close()
		f.observeConnection(info, tp)
	}()
	if !f.authorizeConn(down, &in, info) { // authz.go: network RBAC
		return
	}
	if tp == nil {
		f.closeTCP(info, in, &Reply{Flag: streaminfo.NoRouteFound, Details: "filter_chain_not_found",
			Explanation: "no tcp_proxy chain on listener " + in.Listener + " for " + in.OriginalDst})
		return
	}
	name := tcpCluster(tp)
	info.UpstreamCluster = name
	if rp := blackHoled(tp, in); rp != nil { // capture.go: REGISTRY_ONLY, explained
		f.closeTCP(info, in, rp)
		return
	}
	cl, h, rp := TCPUpstream(f.o.Clusters, name, in.OriginalDst) // decide.go
	if cl != nil {
		ci := cl.Config().Info
		info.DestinationService, info.DestinationServiceName, info.DestinationServiceNamespace = ci.ServiceHost, ci.ServiceName, ci.ServiceNamespace
	}
	if rp == nil {
		rp = ownUpstream(&in, h.Addr, name) // loop.go
	}
	if rp == nil {
		rp = reserveTCPConnection(cl) // decide.go: counted from the dial, not from its answer
	}
	if rp != nil {
		f.closeTCP(info, in, rp)
		return
	}
	stats := cl.Stats()
	defer stats.UpstreamCxActive.Add(-1)
	info.UpstreamHost = h.Addr
	h.RequestStart()
	defer h.RequestEnd()
	d := f.o.Pools.Dialer(cl.Config(), h.Addr)
	in.OriginalSrc.ConfigureDialer(d)
	up, err := f.dialTCP(d, name, in.OriginalSrc.Target(h.Addr)) // upstream_tls.go
	if err != nil {
		h.Stats.CxConnectFail.Add(1)
		stats.UpstreamCxConnectFail.Add(1)
		info.UpstreamTransportFailureReason = connectTransport(err) // upstream_tls.go
		f.closeTCP(info, in, &Reply{Flag: streaminfo.UpstreamConnectionFailure, Details: "upstream_connect_failed",
			Explanation: "connect to " + h.Addr + " for cluster " + name + " failed: " + connectExplain(err)})
		return
	}
	defer up.Close()
	h.Stats.CxTotal.Add(1)
	h.Stats.CxActive.Add(1)
	stats.UpstreamCxTotal.Add(1)
	defer h.Stats.CxActive.Add(-1)
	info.UpstreamLocalAddress = up.LocalAddr().String()
	if in.Direction == "outbound" {
		f.recordUpstream(info, pool.TLSOf(up), cl.Config(), &h.Endpoint) // peer.go: the certificates
	}

	metrics = f.openConnection(info)
	res, gone := pipeOnHost(h, cluster.TCPConnection, countConn(down, metrics), up, tp.IdleTimeout)
	info.BytesReceived, info.BytesSent = res.Received, res.Sent
	switch {
	case gone != nil:
		info.Flags |= streaminfo.LocalReset
		info.ConnectionTerminationDetails = "upstream_host_removed"
		info.LucidError = LucidError(streaminfo.LocalReset, *gone)
	case res.IdleTimeout:
		info.ConnectionTerminationDetails = "idle_timeout"
		info.Notes = append(info.Notes, "closed after the tcp_proxy idle timeout "+tp.IdleTimeout.String()+" without a byte either way")
	case res.UpstreamErr != nil:
		info.Flags |= streaminfo.UpstreamConnectionTermination
		info.LucidError = LucidError(streaminfo.UpstreamConnectionTermination, "upstream "+h.Addr+" (cluster "+name+") connection failed: "+res.UpstreamErr.Error())
	}
}

// closeTCP records why the tcp_proxy closes a connection without an upstream: rp's flag,
// details and explanation (a TCP connection has no response to carry them).
func (f *Forwarder) closeTCP(info *streaminfo.Info, in Inbound, rp *Reply) {
	info.Flags |= rp.Flag
	info.ResponseCodeDetails = rp.Details
	info.LucidError = rp.LucidError()
	f.log.Debug("tcp: connection refused by the proxy", "listener", in.Listener, "error", info.LucidError)
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
