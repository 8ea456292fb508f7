package proxy

import (
	"net/http"
	"time"
)

// Listener warming. Envoy does not let a listener take traffic until the route
// configuration (RDS) its connection manager names has arrived: connections wait instead of
// being answered 404 NR by a half-configured proxy (LDS is applied a moment before RDS on
// every start). Lucid binds the listener at once, so a request whose route configuration has
// not arrived waits here for the Apply that brings it, bounded by RouteWarmTimeout (Envoy's
// initial_fetch_timeout, 15 s) and the request's own context; after that it gets the
// explained 404 NR.

const defaultRouteWarmTimeout = 15 * time.Second

// signalApplied wakes the requests waiting in awaitRoutes.
func (p *Proxy) signalApplied() {
	next := make(chan struct{})
	if old := p.applyCh.Swap(&next); old != nil {
		close(*old)
	}
}

// applied returns a channel closed by the next Apply.
func (p *Proxy) nextApply() <-chan struct{} {
	for {
		if ch := p.applyCh.Load(); ch != nil {
			return *ch
		}
		next := make(chan struct{})
		if p.applyCh.CompareAndSwap(nil, &next) {
			return next
		}
	}
}

// awaitRoutes waits until the current table has the route configuration name, the warm
// timeout passes or r's context ends, and returns the table to use. Like Envoy's warming,
// the timeout runs once per route configuration, from the first request that missed it:
// after it, requests are answered (404 NR, explained) at once.
func (p *Proxy) awaitRoutes(r *http.Request, name string) *table {
	timeout := p.opts.RouteWarmTimeout
	if timeout <= 0 {
		timeout = defaultRouteWarmTimeout
	}
	first, _ := p.warmSince.LoadOrStore(name, time.Now())
	left := timeout - time.Since(first.(time.Time))
	if left <= 0 {
		return p.cur.Load()
	}
	deadline := time.NewTimer(left)
	defer deadline.Stop()
	for {
		next := p.nextApply() // before reading cur, so an Apply in between is not missed
		t := p.cur.Load()
		if t.snap.Routes[name] != nil {
			return t
		}
		select {
		case <-next:
		case <-deadline.C:
			return t
		case <-r.Context().Done():
			return t
		}
	}
}
