package proxy

import (
	"context"
	"sync"
	"time"
)

// Envoy's graceful drain keeps a draining listener accepting: callers still route to the
// sidecar until the endpoint's removal reaches them, and a connection refused then would
// be a failed request. So a drained socket goes on accepting for the drain period (the
// proxy's DrainTimeout, or until ctx ends, whichever is first): every HTTP/1.1 answer
// carries "Connection: close", HTTP/2 connections get GOAWAY after their streams, TCP
// connections run. Only at the end does it stop accepting and close what is left.

// drainAccepting runs a drained socket's drain period. idle is called once, the first time
// no connection is open on the socket (or when the period ends): the sidecar may exit
// early then (EXIT_ON_ZERO_ACTIVE_CONNECTIONS). It returns when the socket has stopped
// accepting; its connections are then the caller's to shut down.
func (p *Proxy) drainAccepting(ctx context.Context, sk *socket, idle func()) {
	var once sync.Once
	defer once.Do(idle)
	sk.drainConns(ctx) // the first phase: a grace for requests already on their way
	if sk.srv != nil {
		// From now on HTTP/2 connections get GOAWAY after a stream, and HTTP/1.1 ones that
		// are idle (told "Connection: close" during the grace) are closed.
		sk.noKeepAlives() // serverloop.go
	}
	end := time.NewTimer(p.opts.DrainTimeout)
	defer end.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if sk.idle() {
			once.Do(idle)
		}
		select {
		case <-ctx.Done():
			sk.close()
			return
		case <-end.C:
			sk.close()
			return
		case <-tick.C:
		}
	}
}

// idle reports whether no connection is open on the socket.
func (s *socket) idle() bool {
	s.tcpMu.Lock()
	n := len(s.tcpLive)
	s.tcpMu.Unlock()
	return n == 0 && s.open.Load() == 0
}
