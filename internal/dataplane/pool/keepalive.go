package pool

import (
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/sockopt"
)

// Dead-upstream detection defaults for HTTP/2 connections: a PING after DefaultH2PingInterval
// without any frame from the upstream, and the connection closed (every stream on it
// reset) when nothing answers within DefaultH2PingTimeout. A silent upstream is found
// within 20 s of its last frame, even when TCP keepalive cannot see it (a userspace relay
// or a TCP proxy in between that still acknowledges packets). Envoy and Istio send no
// PINGs unless DestinationRule http2KeepAlive is set.
const (
	DefaultH2PingInterval = 10 * time.Second
	DefaultH2PingTimeout  = 10 * time.Second
)

// keepalive is a cluster's dead-peer detection: TCP keepalive and user timeout on every
// upstream socket, HTTP/2 PINGs on h2 connections. It is comparable, so a change makes a
// new pool (settings).
type keepalive struct {
	tcp        sockopt.Keepalive
	h2Interval time.Duration
	h2Timeout  time.Duration
}

// keepaliveOf reads the cluster's upstream_connection_options.tcp_keepalive and
// http2_protocol_options.connection_keepalive; unset fields take Lucid's defaults.
func keepaliveOf(c *resource.Cluster) keepalive {
	k := keepalive{h2Interval: DefaultH2PingInterval, h2Timeout: DefaultH2PingTimeout}
	if t := c.TCPKeepalive; t != nil {
		k.tcp = sockopt.Keepalive{Idle: t.Time, Interval: t.Interval, Probes: int(t.Probes)}
	}
	k.tcp = k.tcp.Resolved()
	if h := c.HTTP2Keepalive; h != nil {
		if h.Interval > 0 {
			k.h2Interval = h.Interval
		}
		if h.Timeout > 0 {
			k.h2Timeout = h.Timeout
		}
	}
	return k
}

// configureDialer makes d set the TCP keepalive and user timeout on each upstream socket.
// Call it on every dialer that makes upstream connections.
func (k keepalive) configureDialer(d *net.Dialer) {
	sockopt.ConfigureDialer(d, k.tcp)
}

// http2Config is the HTTP/2 configuration of an h2 transport: PINGs on idle connections.
func (k keepalive) http2Config() *http.HTTP2Config {
	return &http.HTTP2Config{SendPingTimeout: k.h2Interval, PingTimeout: k.h2Timeout}
}

// Dialer returns a dialer for connections to cluster c's endpoints that are made outside
// the HTTP pools (tcp_proxy connections, WebSocket upgrades): c's connect timeout, its
// keepalive, and for loopback addresses the workload's source address (SetSourceAddress).
func (s *Set) Dialer(c *resource.Cluster, addr string) *net.Dialer {
	timeout := c.ConnectTimeout
	if timeout <= 0 {
		timeout = defaultConnectTimeout
	}
	d := &net.Dialer{Timeout: timeout}
	keepaliveOf(c).configureDialer(d)
	s.mu.Lock()
	src := s.source
	s.mu.Unlock()
	if ap, err := netip.ParseAddrPort(addr); err == nil && src.IsValid() && ap.Addr().IsLoopback() && ap.Addr().Is4() == src.Is4() {
		d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
	}
	if c.BindAddress.IsValid() { // upstream_bind_config wins
		d.LocalAddr = &net.TCPAddr{IP: c.BindAddress.AsSlice()}
	}
	return d
}
