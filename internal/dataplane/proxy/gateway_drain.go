package proxy

import (
	"context"
	"slices"
)

// DrainRouter is a router's (gateway's) drain at shutdown (Envoy's drain_listeners?graceful
// without inboundonly): every socket except those running the listeners named in keep
// stops accepting and its connections finish their requests (HTTP/1.1 "Connection:
// close", HTTP/2 GOAWAY, TCP connections to their end), as DrainInbound does for a
// sidecar's inbound sockets. keep is for the bootstrap's health listener, which goes on
// answering "not ready". When ctx ends, connections still open are closed; the returned
// channel closes once none is left.
func (p *Proxy) DrainRouter(ctx context.Context, keep ...string) <-chan struct{} {
	return p.drainWhere(ctx, "listener", func(listener string) bool { return !slices.Contains(keep, listener) })
}
