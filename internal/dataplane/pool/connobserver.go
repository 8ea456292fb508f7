package pool

import (
	"context"
	"net"
)

// ConnObserver learns which upstream connection carries a request: forward records its
// local address for the access log (%UPSTREAM_LOCAL_ADDRESS%). UpstreamConn may run on a
// transport goroutine.
//
// It replaces an httptrace.ClientTrace GotConn hook on the hot path: the pool installs its
// own ClientTrace for every HTTP/2 request, and httptrace composes two traces through
// reflection (reflect.MakeFunc and a reflective call per request), which cost more than a
// tenth of a sidecar's CPU under h2c load.
type ConnObserver interface {
	UpstreamConn(c net.Conn)
}

type connObserverKey struct{}

// WithConnObserver returns ctx carrying o, which RoundTrip calls once it has a connection
// for the request (HTTP/1.1 and HTTP/2).
func WithConnObserver(ctx context.Context, o ConnObserver) context.Context {
	return context.WithValue(ctx, connObserverKey{}, o)
}

// connObserver is the ConnObserver of ctx, or nil.
func connObserver(ctx context.Context) ConnObserver {
	o, _ := ctx.Value(connObserverKey{}).(ConnObserver)
	return o
}
