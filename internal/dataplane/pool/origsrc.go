package pool

import (
	"net"
	"net/netip"
	"sync"
	"syscall"
)

// Original source (Envoy's envoy.filters.listener.original_src, which Istio puts on
// virtualInbound under TPROXY interception): the sidecar's connection to the app is made
// from the downstream client's own address (any port), with IP_TRANSPARENT so the kernel
// lets it bind an address that is not the pod's, and with the listener's mark (Istio: 1337)
// so the app's replies, addressed to the client, are routed back to the sidecar (the
// capture rules' CONNMARK and `fwmark 1337 lookup 133`). The app then sees the real
// client, not 127.0.0.6 or the pod's address.

// OriginalSource is the source of an upstream connection made on behalf of a downstream
// client: its address (the zero Addr: none, the pool's usual source) and the socket mark.
type OriginalSource struct {
	Addr netip.Addr
	Mark uint32
	// Local is the pod's address the client called: a loopback upstream (the inbound
	// cluster's 127.0.0.1 endpoint) is dialled there instead, as Istio's inbound clusters
	// dial the original destination, since the app's reply from a loopback address could
	// not be routed to a client outside the pod.
	Local netip.Addr
}

// Valid reports whether o names a source.
func (o OriginalSource) Valid() bool { return o.Addr.IsValid() }

// Target is the address to dial for upstream addr ("ip:port"): addr, or for a loopback
// upstream the same port on o.Local.
func (o OriginalSource) Target(addr string) string {
	if !o.Valid() || !o.Local.IsValid() {
		return addr
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().IsLoopback() || ap.Addr().Is4() != o.Local.Is4() {
		return addr
	}
	return netip.AddrPortFrom(o.Local, ap.Port()).String()
}

// ConfigureDialer makes d bind o's address (port 0) on a transparent, marked socket. It
// wins over upstream_bind_config and the workload's source address, as Envoy's
// original_src does. Nothing changes when o is not Valid.
func (o OriginalSource) ConfigureDialer(d *net.Dialer) {
	if !o.Valid() {
		return
	}
	d.LocalAddr = &net.TCPAddr{IP: o.Addr.AsSlice()}
	prev := d.Control
	d.Control = func(network, address string, c syscall.RawConn) error {
		if prev != nil {
			if err := prev(network, address, c); err != nil {
				return err
			}
		}
		return transparentControl(c, o.Mark)
	}
}

// maxSourcePools bounds the per-client pools of one cluster kept after they go idle.
const maxSourcePools = 256

// sourcePools are a pool's per-client pools (From): connections made from one client's
// address are reused only for that client, as Envoy keys its pools by the socket options
// original_src sets.
type sourcePools struct {
	mu sync.Mutex
	m  map[OriginalSource]*Pool
}

// From returns the pool of connections made from o: p itself when o is not Valid, else a
// pool with p's settings whose connections bind o (created on first use, retired with p).
func (p *Pool) From(o OriginalSource) *Pool {
	if !o.Valid() {
		return p
	}
	s := &p.sources
	s.mu.Lock()
	defer s.mu.Unlock()
	if sp := s.m[o]; sp != nil {
		return sp
	}
	if s.m == nil {
		s.m = map[OriginalSource]*Pool{}
	}
	if len(s.m) >= maxSourcePools { // forget clients with nothing in flight
		for k, sp := range s.m {
			if sp.inflight.Load() == 0 {
				sp.closeIdle()
				delete(s.m, k)
			}
		}
	}
	st := p.settings
	st.source = o
	sp := newPool(p.name, st, netip.Addr{}, p.idle, p.log)
	sp.upTLS = p.upTLS
	if p.retired.Load() {
		sp.retired.Store(true)
	}
	s.m[o] = sp
	return sp
}

// sourcePools are p's per-client pools (From), sharing p's learned idle timeouts.
func (p *Pool) sourcePools() []*Pool {
	p.sources.mu.Lock()
	defer p.sources.mu.Unlock()
	subs := make([]*Pool, 0, len(p.sources.m))
	for _, sp := range p.sources.m {
		subs = append(subs, sp)
	}
	return subs
}

// eachSource runs fn on p's per-client pools.
func (p *Pool) eachSource(fn func(*Pool)) {
	for _, sp := range p.sourcePools() {
		fn(sp)
	}
}
