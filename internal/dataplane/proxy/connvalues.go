package proxy

import (
	"context"
	"net"
	"net/http"
	"net/netip"

	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// connValues are what the proxy knows of a downstream connection before its first
// request: its two addresses, its checked reader (http1), and what the socket's kind adds
// (a capture socket's original destination, a gateway's filter chain chosen by SNI, a
// mutual-TLS peer). The HTTP server's ConnContext makes them once per connection, and
// they reach each request under one context key: a request finds them all with one
// lookup, and parses no address.
type connValues struct {
	local, remote netip.AddrPort
	checked       *http1.Conn           // nil: the connection's requests are not checked (HTTP/2 over TLS)
	captured      *captured             // capture.go; nil on other sockets
	chain         *resource.FilterChain // gateway.go: chosen per connection; nil: by port
	peer          *forward.Peer         // mtls.go: the verified peer; nil on plaintext
}

type connValuesKey struct{}

// connContext is the ConnContext of every HTTP server of the proxy: it gives c's requests
// c's connValues.
func connContext(ctx context.Context, c net.Conn) context.Context {
	v := &connValues{local: addrPortOf(c.LocalAddr()), remote: addrPortOf(c.RemoteAddr())}
	v.checked, _ = c.(*http1.Conn)
	return context.WithValue(ctx, connValuesKey{}, v)
}

// valuesOf are the connValues of r's connection; empty ones (a request served without
// the proxy's ConnContext) carry r's addresses.
func valuesOf(r *http.Request) *connValues {
	if v, ok := r.Context().Value(connValuesKey{}).(*connValues); ok {
		return v
	}
	v := &connValues{local: localAddr(r)}
	v.remote, _ = netip.ParseAddrPort(r.RemoteAddr)
	return v
}

// addrPortOf is a, as ParseAddrPort reads what a.String() prints: an IPv4 address in
// IPv6 form becomes IPv4, as net.TCPAddr prints it. A TCP address is converted without
// formatting and parsing it.
func addrPortOf(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if a != nil {
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			return ap
		}
	}
	return netip.AddrPort{}
}

// localAddr is the address r's connection was accepted on (http.LocalAddrContextKey).
func localAddr(r *http.Request) netip.AddrPort {
	a, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	return addrPortOf(a)
}
