package proxy

import (
	"net"
	"net/http"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/sockopt"
)

// Dead-downstream detection. Every accepted connection gets TCP keepalive and
// TCP_USER_TIMEOUT (internal/dataplane/sockopt: found dead within 25 s), and HTTP/2 clients idle for
// H2PingInterval get a PING; without an answer (any frame) within H2PingTimeout the
// connection is closed and its streams end, which cancels their upstream requests. A
// quiet stream whose client answers PINGs (every HTTP/2 client does, even with its own
// pings off) lives as long as it wants: there is no stream idle timeout by default
// (Istio sets stream_idle_timeout 0).
const (
	DefaultH2PingInterval = 10 * time.Second
	DefaultH2PingTimeout  = 10 * time.Second
)

// downstreamDefaults fills the keepalive options of o.
func downstreamDefaults(o *Options) {
	if o.H2PingInterval == 0 {
		o.H2PingInterval = DefaultH2PingInterval
	}
	if o.H2PingTimeout <= 0 {
		o.H2PingTimeout = DefaultH2PingTimeout
	}
}

// serverHTTP2 is the HTTP/2 configuration of the sockets' servers.
func (p *Proxy) serverHTTP2() *http.HTTP2Config {
	c := &http.HTTP2Config{}
	if p.opts.H2PingInterval > 0 {
		c.SendPingTimeout = p.opts.H2PingInterval
		c.PingTimeout = p.opts.H2PingTimeout
	}
	return c
}

// keepaliveListener sets the downstream keepalive on every accepted connection.
func (p *Proxy) keepaliveListener(ln net.Listener) net.Listener {
	return sockopt.Listener(ln, p.opts.DownstreamKeepalive)
}
