package proxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/lucid-mesh/lucid/internal/cluster"
)

// serveTCP runs a tcp_proxy chain: each accepted connection is piped to a host of the
// chain's cluster, with half-close passed through. (Idle timeouts, keepalive and access
// logging of TCP connections come with the streams issue.)
func (p *Proxy) serveTCP(sk *socket) error {
	for {
		c, err := sk.ln.Accept()
		if err != nil {
			return err
		}
		sk.tcpMu.Lock()
		sk.tcpLive[c] = struct{}{}
		sk.tcpConns.Add(1)
		sk.tcpMu.Unlock()
		go func() {
			defer func() {
				sk.tcpMu.Lock()
				delete(sk.tcpLive, c)
				sk.tcpMu.Unlock()
				sk.tcpConns.Done()
			}()
			p.pipeTCP(sk, c)
		}()
	}
}

func (p *Proxy) pipeTCP(sk *socket, down net.Conn) {
	defer down.Close()
	t := p.cur.Load()
	tg := sk.target.Load()
	l := t.snap.Listeners[tg.listener]
	if l == nil {
		return
	}
	fc := chainFor(l, tg.chainPort)
	if fc == nil || fc.TCP == nil {
		return
	}
	cl := p.opts.Clusters.Get(fc.TCP.Cluster)
	if cl == nil {
		p.log.Debug("tcp: cluster not found", "listener", tg.listener, "cluster", fc.TCP.Cluster)
		return
	}
	h, err := cl.Pick(cluster.PickContext{OriginalDst: sk.addr.String()})
	if err != nil {
		p.log.Debug("tcp: no healthy upstream", "cluster", fc.TCP.Cluster, "error", err)
		return
	}
	h.RequestStart()
	defer h.RequestEnd()
	timeout := cl.Config().ConnectTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	up, err := net.DialTimeout("tcp", h.Addr, timeout)
	if err != nil {
		h.Stats.CxConnectFail.Add(1)
		cl.Stats().UpstreamCxConnectFail.Add(1)
		p.log.Debug("tcp: upstream connect failed", "cluster", fc.TCP.Cluster, "host", h.Addr, "error", err)
		return
	}
	defer up.Close()
	pipe(down, up)
}

// pipe copies both ways until both directions are done, passing half-closes on.
func pipe(a, b net.Conn) {
	var wg sync.WaitGroup
	wg.Add(2)
	cp := func(dst, src net.Conn) {
		defer wg.Done()
		_, err := io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok && err == nil {
			_ = cw.CloseWrite()
		} else {
			_ = dst.Close()
		}
		if err != nil && !errors.Is(err, net.ErrClosed) {
			_ = src.Close()
		}
	}
	go cp(a, b)
	go cp(b, a)
	wg.Wait()
}
