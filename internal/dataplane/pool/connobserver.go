package pool

import (
	"net"
)

// ConnObserver learns which upstream connection carries a request: forward records its
// local address for the access log (%UPSTREAM_LOCAL_ADDRESS%). The Counters given to
// RoundTrip may implement it: RoundTrip then calls UpstreamConn once it has a connection
// for the request (HTTP/1.1 and HTTP/2), with the connection's local address ("ip:port",
// worked out once per connection; "" when it is not TCP). UpstreamConn may run on a
// transport goroutine.
//
// It replaces an httptrace.ClientTrace GotConn hook on the hot path: the pool installs its
// own ClientTrace for every HTTP/2 request, and httptrace composes two traces through
// reflection (reflect.MakeFunc and a reflective call per request), which cost more than a
// tenth of a sidecar's CPU under h2c load. Being the Counters rather than a context value,
// it costs no allocation per request.
type ConnObserver interface {
	UpstreamConn(c net.Conn, local string)
}

// observe tells cb's ConnObserver, if any, the connection c with local address local.
func observe(cb Counters, c net.Conn, local string) {
	if o, ok := cb.(ConnObserver); ok && c != nil {
		o.UpstreamConn(c, local)
	}
}

// LocalAddress is c's local address as ConnObserver reports it: "ip:port" for TCP, else "".
func LocalAddress(c net.Conn) string {
	if ta, ok := c.LocalAddr().(*net.TCPAddr); ok {
		return ta.String()
	}
	return ""
}
