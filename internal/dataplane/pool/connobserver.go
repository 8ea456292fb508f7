package pool

import (
	"net"
)

// ConnObserver learns which upstream connection carries a request: forward records its
// local address for the access log (%UPSTREAM_LOCAL_ADDRESS%). RoundTrip calls the one it
// is given once it has a connection for the request (HTTP/1.1 and HTTP/2), with the
// connection's local address ("ip:port", worked out once per connection; "" when it is
// not TCP). UpstreamConn may run on a transport goroutine.
//
// It replaces an httptrace.ClientTrace GotConn hook on the hot path: with net/http's
// HTTP/2 client (LUCID_HTTP2_CLIENT=nethttp) the pool installs its own ClientTrace for
// every request, and httptrace composes two traces through reflection (reflect.MakeFunc
// and a reflective call per request), which cost more than a tenth of a sidecar's CPU
// under h2c load. Given to RoundTrip rather than as a context value, it costs no
// allocation per request.
type ConnObserver interface {
	UpstreamConn(c net.Conn, local string)
}

// observe tells obs, if any, the connection c with local address local.
func observe(obs ConnObserver, c net.Conn, local string) {
	if obs != nil && c != nil {
		obs.UpstreamConn(c, local)
	}
}

// LocalAddress is c's local address as ConnObserver reports it: "ip:port" for TCP, else "".
func LocalAddress(c net.Conn) string {
	if ta, ok := c.LocalAddr().(*net.TCPAddr); ok {
		return ta.String()
	}
	return ""
}
