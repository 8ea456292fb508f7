package forward

import (
	"context"
	"errors"
	"net"

	"github.com/lucid-mesh/lucid/internal/dataplane/pool"
)

// dialUpstream connects to addr of cluster with d for a connection outside the HTTP
// pools (tcp_proxy, CONNECT tunnels, upgrades), then originates the cluster's TLS on it
// as the pools do: ISTIO_MUTUAL, auto mTLS to endpoints with a sidecar, a
// DestinationRule's SIMPLE or MUTUAL. A failed handshake is a *pool.ConnectError (UF).
func (f *Forwarder) dialUpstream(ctx context.Context, d *net.Dialer, cluster, addr string) (net.Conn, error) {
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil || f.o.Pools == nil {
		return c, err
	}
	if d.Timeout > 0 { // the handshake within the connect timeout, as Envoy's
		hctx, cancel := context.WithTimeout(ctx, d.Timeout)
		defer cancel()
		ctx = hctx
	}
	return f.o.Pools.Secure(ctx, cluster, addr, c)
}

// dialTCP is dialUpstream for tcp_proxy, which has no request context.
func (f *Forwarder) dialTCP(d *net.Dialer, cluster, addr string) (net.Conn, error) {
	return f.dialUpstream(context.Background(), d, cluster, addr)
}

// connectExplain says in words why a tcp_proxy connection failed: the TLS handshake's
// explanation, else the cause.
func connectExplain(err error) string {
	var ce *pool.ConnectError
	if errors.As(err, &ce) && ce.Explain != "" {
		return ce.Explain
	}
	return connectCause(err)
}

// connectTransport is a failed tcp_proxy connection's transport failure reason: Envoy's
// TLS error for a handshake, else the cause.
func connectTransport(err error) string {
	var ce *pool.ConnectError
	if errors.As(err, &ce) && ce.Transport != "" {
		return ce.Transport
	}
	return connectCause(err)
}
