package proxy

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/lucid-mesh/lucid/internal/dataplane/sockio"
)

// Connection bounds: no single mistake (a forwarding loop, a client that opens
// connections without end) may exhaust the process's file descriptors. Each socket
// accepts at most MaxConnectionsPerListener connections at once; one more is closed as
// soon as it is accepted and counted in listener.<address>.downstream_cx_overflow
// (Envoy's name for a listener's connection limit). Upstream connections are bounded per
// cluster in forward (Envoy's max_connections default, 1024).

// Bounds of the default per-listener limit.
const (
	minListenerConnections = 1024
	maxListenerConnections = 65536
)

// defaultListenerConnections is half the process's file descriptor limit (Go raises the
// soft limit to the hard one at start), within the bounds above.
func defaultListenerConnections() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == 0 {
		return minListenerConnections
	}
	return int(min(max(rl.Cur/2, minListenerConnections), maxListenerConnections))
}

// listenerCounters are a socket's downstream_cx_* counters.
type listenerCounters struct {
	total, overflow atomic.Uint64
	active          atomic.Int64
}

// limitListener accepts up to max connections open at once.
type limitListener struct {
	net.Listener
	max int64
	c   *listenerCounters
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.c.active.Add(1) > l.max {
			l.c.active.Add(-1)
			l.c.overflow.Add(1)
			_ = c.Close()
			continue
		}
		l.c.total.Add(1)
		// sockio: reads and writes as raw socket calls, for TLS and TCP proxying too
		return &limitedConn{Conn: sockio.Wrap(c), c: l.c}, nil
	}
}

// limitedConn gives its place back when closed.
type limitedConn struct {
	net.Conn
	c    *listenerCounters
	once sync.Once
}

func (c *limitedConn) Close() error {
	c.once.Do(func() { c.c.active.Add(-1) })
	return c.Conn.Close()
}

// CloseWrite and SyscallConn pass on to the TCP connection (half-closes; socket options).
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Socket shares the connection's raw socket calls (sockio.Socketed).
func (c *limitedConn) Socket() *sockio.Conn { return sockio.Open(c.Conn) }

func (c *limitedConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, syscall.EINVAL
}

// limitListener bounds sk's connections and registers its counters.
func (p *Proxy) limitListener(ln net.Listener, sk *socket) net.Listener {
	n := p.opts.MaxConnectionsPerListener
	if n <= 0 {
		n = defaultListenerConnections()
	}
	sk.cx = &listenerCounters{}
	return &limitListener{Listener: ln, max: int64(n), c: sk.cx}
}

// EachListenerStat emits every bound socket's listener.<address>.downstream_cx_* stats
// (the address as Envoy names listener stats: 127.0.0.1_8080).
func (p *Proxy) EachListenerStat(emit func(name string, value uint64)) {
	p.mu.Lock()
	socks := make([]*socket, 0, len(p.sockets))
	for _, sk := range p.sockets {
		socks = append(socks, sk)
	}
	p.mu.Unlock()
	for _, sk := range socks {
		if sk.cx == nil {
			continue
		}
		prefix := "listener." + strings.ReplaceAll(sk.addr.String(), ":", "_") + "."
		emit(prefix+"downstream_cx_total", sk.cx.total.Load())
		emit(prefix+"downstream_cx_overflow", sk.cx.overflow.Load())
	}
}

// EachListenerGauge emits listener.<address>.downstream_cx_active.
func (p *Proxy) EachListenerGauge(emit func(name string, value uint64)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, sk := range p.sockets {
		if sk.cx != nil {
			emit("listener."+strings.ReplaceAll(sk.addr.String(), ":", "_")+".downstream_cx_active", uint64(max(sk.cx.active.Load(), 0)))
		}
	}
}

// ownAddresses are the addresses the planned sockets listen on; a socket on an
// unspecified address listens on every local one, so loopback's stand for it.
func ownAddresses(wants map[netip.AddrPort]want) map[string]bool {
	own := make(map[string]bool, len(wants))
	for a := range wants {
		own[a.String()] = true
		if a.Addr().IsUnspecified() {
			own[netip.AddrPortFrom(netip.IPv4Unspecified(), a.Port()).String()] = true
			own[netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), a.Port()).String()] = true
		}
	}
	return own
}
