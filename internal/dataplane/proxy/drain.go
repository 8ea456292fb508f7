package proxy

import (
	"context"
	"sync"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// DrainInbound is the sidecar's drain at shutdown (Envoy's drain_listeners?inboundonly):
// every inbound socket (virtualInbound's ports, any listener whose traffic_direction is
// INBOUND) drains: it keeps accepting for the drain period (Envoy's graceful drain,
// drain_accept.go) and then stops, and its connections finish their requests: HTTP/1.1
// responses carry "Connection: close", HTTP/2 connections get GOAWAY, idle connections
// close, TCP connections run to their end. Outbound sockets (the explicit proxy on
// 15001) and direction-less ones (15021) keep serving, so the app can finish its own work.
//
// When ctx ends, inbound connections still open are closed. The returned channel closes
// the first time no inbound connection is open. The drained sockets leave the proxy: a later Apply
// binds them again unless the caller stops asking for them (the agent marks inbound
// listeners not to bind while it drains).
func (p *Proxy) DrainInbound(ctx context.Context) <-chan struct{} {
	snap := p.cur.Load().snap
	return p.drainWhere(ctx, "inbound listener", func(listener string) bool {
		l := snap.Listeners[listener]
		return l != nil && l.Direction == resource.Inbound
	})
}

// drainWhere closes every socket whose listener pick selects and drains its connections
// (HTTP/1.1 "Connection: close", HTTP/2 GOAWAY, TCP to their end); when ctx ends, the
// connections still open are closed. The channel closes once none is left.
func (p *Proxy) drainWhere(ctx context.Context, what string, pick func(listener string) bool) <-chan struct{} {
	p.mu.Lock()
	var socks []*socket
	for addr, sk := range p.sockets {
		if pick(sk.target.Load().listener) {
			sk.draining.Store(true) // answers say Connection: close from the moment the drain is asked for
			socks = append(socks, sk)
			delete(p.sockets, addr)
		}
	}
	var wg sync.WaitGroup
	wg.Add(len(socks))
	p.wg.Add(len(socks))
	p.mu.Unlock()

	for _, sk := range socks {
		go func() {
			defer p.wg.Done()
			p.drainAccepting(ctx, sk, wg.Done) // drain_accept.go: accepting until the drain period ends
			if err := sk.shutdown(ctx); err != nil {
				p.log.Info(what+" drained with connections still open", "address", sk.addr.String(), "error", err)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	return done
}
