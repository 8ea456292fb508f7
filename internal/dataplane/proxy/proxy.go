// Package proxy runs the configuration the xDS client accepted: it binds the listeners'
// sockets, keeps the current tables behind one atomic pointer, picks the filter chain of
// each connection or request, terminates TLS, and hands each request, TCP connection or
// CONNECT tunnel to forward, which decides everything after that (including every reply
// the proxy makes itself). It sits between xdsclient and the request path:
//
//	xdsclient → proxy.Apply(resource.Snapshot) → sockets → forward → cluster/pool → app
//
// Apply is all-or-nothing: new sockets are bound first, and if any bind fails nothing
// changes and the error goes back to xdsclient, which NACKs the update. In-flight requests
// keep the tables they started with; removed sockets stop accepting and drain.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/cluster"
	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
	"github.com/lucid-mesh/lucid/internal/dataplane/pool"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/route"
	"github.com/lucid-mesh/lucid/internal/dataplane/sockopt"
)

// Options configure a Proxy.
type Options struct {
	// IP is the workload's address. In local mode (no traffic capture) every listener the
	// sidecar needs is bound on it: the explicit outbound proxy (virtualOutbound's port) and
	// one socket per inbound port of virtualInbound.
	IP        netip.Addr
	Forwarder *forward.Forwarder
	Clusters  *cluster.Manager
	Pools     *pool.Set
	Logger    *slog.Logger
	// DrainTimeout bounds how long a removed socket's connections may finish (default 5 s).
	DrainTimeout time.Duration

	// DownstreamKeepalive is the TCP keepalive and user timeout set on every accepted
	// connection; the zero value is sockopt's default (dead within 25 s).
	DownstreamKeepalive sockopt.Keepalive
	// H2PingInterval and H2PingTimeout: a PING to an HTTP/2 client after H2PingInterval
	// without a frame from it, the connection closed without an answer within
	// H2PingTimeout. Defaults 10 s and 10 s; a negative interval turns PINGs off.
	H2PingInterval, H2PingTimeout time.Duration

	// ListenerFiltersTimeout bounds the TLS inspector's wait for a ClientHello and a TLS
	// handshake on a router's listener (default 15 s, Envoy's listener_filters_timeout).
	ListenerFiltersTimeout time.Duration
	// RouteWarmTimeout bounds how long a request waits for its listener's route
	// configuration (RDS) to arrive (warming.go; Envoy's initial_fetch_timeout, 15 s).
	RouteWarmTimeout time.Duration

	// RequestLimits are the request limits of connection managers that set none (http1.go;
	// the zero value is Envoy's: 60 KiB of headers, 100 headers, no HTTP/1.0). Istio sets
	// them through ProxyConfig (runtimeValues, proxyMetadata ISTIO_META_HTTP10).
	RequestLimits http1.Limits
	// IdleTimeout, when set, replaces every connection manager's downstream idle timeout
	// (Istio's ISTIO_META_IDLE_TIMEOUT); unset, the connection manager's applies (1 h).
	IdleTimeout time.Duration
	// MaxConnectionsPerListener bounds the connections a socket has open at once (limit.go;
	// default: half the process's file descriptor limit, between 1024 and 65536).
	MaxConnectionsPerListener int
	// MTLS is the workload identity of mutual-TLS chains (mtls.go); nil: none.
	MTLS MTLS
	// Capture: the pod's traffic is captured (capture.go): virtualOutbound and
	// virtualInbound are bound on 0.0.0.0 of their ports and dispatch each connection by
	// its original destination, instead of local mode's explicit proxy and inbound ports.
	Capture bool
	// Transparent (TPROXY interception): the capture sockets are IP_TRANSPARENT, so that
	// connections the rules deliver with their destination kept are accepted (needs
	// CAP_NET_ADMIN, as Istio's proxy gets in TPROXY mode).
	Transparent bool
}

// Proxy owns the bound sockets and the current configuration.
type Proxy struct {
	opts Options
	log  *slog.Logger

	cur atomic.Pointer[table]

	mu      sync.Mutex // serialises Apply and Close; guards sockets
	sockets map[netip.AddrPort]*socket
	closed  bool
	applied atomic.Bool
	wg      sync.WaitGroup // socket goroutines

	tlsStats    tlsCounters       // listener.<name>.ssl.* (tls.go)
	mtlsRefused plaintextRefusals // mtls.go
	peers       peers             // mtls.go: mutual-TLS peers until their requests take them

	applyCh   atomic.Pointer[chan struct{}] // closed and replaced by each Apply (warming.go)
	warmSince sync.Map                      // route configuration name → first request that waited for it (warming.go)

	authzOnce      sync.Once       // authz.go
	authzTransport *http.Transport // authz.go: ext_authz checks and key set fetches
}

// table is one immutable generation of configuration, read lock-free by requests.
type table struct {
	snap *resource.Snapshot
	// outboundByPort indexes the listeners an explicit-proxy request is handed to, as
	// original_dst would: BindToPort false, outbound, keyed by port.
	outboundByPort map[uint16]*resource.Listener
	// passthrough holds, per explicit-proxy listener, the one-route table of its default
	// chain, built once per configuration instead of per request.
	passthrough map[string]*resource.RouteConfig
	// tls holds the server configuration of each chain that terminates TLS (tls.go);
	// plaintext the route tables used for requests without TLS where a virtual host
	// has require_tls (tls_redirect.go).
	tls       chainTLS
	plaintext map[*resource.RouteConfig]*resource.RouteConfig
	// routes indexes every route configuration above for virtual host selection
	// (routetables.go).
	routes map[*resource.RouteConfig]*route.Table
	// own holds the addresses the proxy listens on ("ip:port"): forward refuses an
	// upstream among them (a request sent back to the proxy itself).
	own map[string]bool
	// capture finds the listener of a captured connection's original destination (capture.go).
	capture captureIndex
	// authz holds the compiled authorization chains (authz.go).
	authz authzChains
}

// New creates a Proxy with no configuration; nothing is bound until Apply.
func New(o Options) *Proxy {
	if o.DrainTimeout == 0 {
		o.DrainTimeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ListenerFiltersTimeout <= 0 {
		o.ListenerFiltersTimeout = DefaultListenerFiltersTimeout
	}
	downstreamDefaults(&o)
	p := &Proxy{opts: o, log: o.Logger, sockets: map[netip.AddrPort]*socket{}}
	p.cur.Store(&table{snap: &resource.Snapshot{}})
	return p
}

// Applied reports whether a configuration has been applied and its sockets bound.
func (p *Proxy) Applied() bool { return p.applied.Load() }

// Snapshot returns the configuration in force.
func (p *Proxy) Snapshot() *resource.Snapshot { return p.cur.Load().snap }

// want is one socket the configuration asks for.
type want struct {
	addr netip.AddrPort
	kind socketKind
	// listener is the listener whose chains the socket runs; chainPort selects the chain of
	// a virtualInbound listener (0 for others).
	listener  string
	chainPort uint32
}

// plan lists the sockets a snapshot needs, validating what local mode can run.
func (p *Proxy) plan(s *resource.Snapshot) (map[netip.AddrPort]want, error) {
	out := map[netip.AddrPort]want{}
	names := make([]string, 0, len(s.Listeners))
	for n := range s.Listeners {
		names = append(names, n)
	}
	sort.Strings(names)
	add := func(w want) error {
		if prev, ok := out[w.addr]; ok {
			return fmt.Errorf("listener %q: address %s is already used by listener %q", w.listener, w.addr, prev.listener)
		}
		out[w.addr] = w
		return nil
	}
	for _, name := range names {
		l := s.Listeners[name]
		if !l.BindToPort {
			continue
		}
		ip := l.Address.Addr()
		if ip.IsUnspecified() && p.opts.IP.IsValid() {
			ip = p.opts.IP
		}
		switch {
		case l.UseOriginalDst && p.opts.Capture: // capture.go
			if err := add(captureWant(name, l)); err != nil {
				return nil, err
			}
		case l.UseOriginalDst && l.Direction == resource.Inbound:
			// Local mode: bind each inbound port instead of receiving redirected traffic.
			for _, fc := range l.FilterChains {
				port := fc.Match.DestinationPort
				if port == 0 {
					continue
				}
				kind := kindHTTP
				if fc.HTTP == nil {
					kind = kindTCP
				}
				if inboundPicksChain(l, port) { // mtls.go: TLS or plaintext per connection
					if prev, ok := out[netip.AddrPortFrom(ip, uint16(port))]; ok && prev.listener == name {
						continue // the port's other chain
					}
					kind = kindChains
				}
				if err := add(want{addr: netip.AddrPortFrom(ip, uint16(port)), kind: kind, listener: name, chainPort: port}); err != nil {
					return nil, err
				}
			}
		case l.UseOriginalDst:
			if err := add(want{addr: netip.AddrPortFrom(ip, l.Address.Port()), kind: kindExplicit, listener: name}); err != nil {
				return nil, err
			}
		default:
			if len(l.FilterChains) == 0 && l.DefaultChain == nil {
				return nil, fmt.Errorf("listener %q: no filter chains", name)
			}
			kind := listenerKind(l) // gateway.go
			if err := add(want{addr: netip.AddrPortFrom(ip, l.Address.Port()), kind: kind, listener: name}); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func firstChain(l *resource.Listener) *resource.FilterChain {
	if len(l.FilterChains) > 0 {
		return &l.FilterChains[0]
	}
	return l.DefaultChain
}

// Apply installs a snapshot. On error nothing changed.
func (p *Proxy) Apply(s *resource.Snapshot) error {
	wants, err := p.plan(s)
	if err != nil {
		return err
	}
	certs, err := loadTLS(s, p.opts.MTLS, p.log) // tls.go: certificates are read now; a bad one NACKs
	if err != nil {
		return err
	}
	chains, err := p.buildAuthz(s) // authz.go: an invalid key set NACKs
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("proxy is shutting down")
	}

	// Bind what is new (or changed kind) first; undo on any failure.
	var fresh []*socket
	var replaced []*socket
	for addr, w := range wants {
		if old, ok := p.sockets[addr]; ok {
			if old.kind == w.kind {
				old.setTarget(w)
				continue
			}
			// Same address, other kind: the old socket must go before the new one binds.
			old.close()
			replaced = append(replaced, old)
			delete(p.sockets, addr)
		}
		sk, err := p.bind(w)
		if err != nil {
			for _, f := range fresh {
				f.close()
			}
			return fmt.Errorf("listener %q: bind %s: %w", w.listener, addr, err)
		}
		fresh = append(fresh, sk)
	}

	// Clusters and pools first, so that routes published next find their clusters.
	p.opts.Clusters.Update(s.Clusters, s.Endpoints)
	p.opts.Pools.Update(s.Clusters)
	t := buildTable(s)
	t.tls = certs
	t.authz = chains
	t.own = ownAddresses(wants) // limit.go: an upstream here is this proxy (a forwarding loop)
	p.cur.Store(t)
	p.signalApplied() // warming.go: requests waiting for a route configuration look again

	for _, sk := range fresh {
		p.sockets[sk.addr] = sk
		p.serve(sk)
	}
	for addr, sk := range p.sockets {
		if _, ok := wants[addr]; !ok {
			delete(p.sockets, addr)
			p.drain(sk)
		}
	}
	for _, sk := range replaced {
		p.drain(sk)
	}
	p.applied.Store(true)
	return nil
}

func buildTable(s *resource.Snapshot) *table {
	t := &table{snap: s, outboundByPort: OutboundListeners(s), passthrough: map[string]*resource.RouteConfig{}}
	for _, l := range s.Listeners {
		if l.UseOriginalDst && l.Direction != resource.Inbound {
			t.passthrough[l.Name] = PassthroughRoutes(l, "*")
		}
	}
	t.plaintext = requireTLSRoutes(s) // tls_redirect.go
	t.routes = compileRoutes(t)       // routetables.go
	t.capture = newCaptureIndex(s)    // capture.go
	return t
}

// OutboundListeners indexes by port the listeners the explicit proxy hands a request to,
// as original_dst would: not bound, not inbound (Istio's 0.0.0.0_<port>). Of two on one
// port, the first by name.
func OutboundListeners(s *resource.Snapshot) map[uint16]*resource.Listener {
	out := map[uint16]*resource.Listener{}
	for _, name := range slices.Sorted(maps.Keys(s.Listeners)) {
		l := s.Listeners[name]
		if _, dup := out[l.Address.Port()]; !dup && !l.BindToPort && l.Direction != resource.Inbound {
			out[l.Address.Port()] = l
		}
	}
	return out
}

// Listening lists the bound sockets and the listener each runs, sorted by address.
func (p *Proxy) Listening() []Bound {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Bound, 0, len(p.sockets))
	for _, sk := range p.sockets {
		w := sk.target.Load()
		out = append(out, Bound{Address: sk.addr, Listener: w.listener})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address.String() < out[j].Address.String() })
	return out
}

// Bound is one socket the proxy listens on.
type Bound struct {
	Address  netip.AddrPort
	Listener string
}

// Close stops every socket and waits up to ctx for connections to finish.
func (p *Proxy) Close(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	socks := make([]*socket, 0, len(p.sockets))
	for _, sk := range p.sockets {
		socks = append(socks, sk)
	}
	p.sockets = map[netip.AddrPort]*socket{}
	p.mu.Unlock()
	defer p.closeAuthz() // authz.go
	for _, sk := range socks {
		sk.close()
	}
	var errs []error
	for _, sk := range socks {
		if err := sk.shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, ctx.Err())
	}
	return errors.Join(errs...)
}

// drain stops accepting on a socket that left the configuration and lets its
// connections finish within DrainTimeout.
func (p *Proxy) drain(sk *socket) {
	sk.close()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), p.opts.DrainTimeout)
		defer cancel()
		sk.drainConns(ctx)
		if err := sk.shutdown(ctx); err != nil {
			p.log.Info("listener drained with connections still open", "address", sk.addr.String(), "error", err)
		}
	}()
}

// Missing lists what the applied configuration references but has not received yet:
// route configurations named by listeners (RDS) and endpoints of EDS clusters. Like
// Envoy's listener and cluster warming, the proxy is not ready while anything is missing.
func (p *Proxy) Missing() []string {
	s := p.cur.Load().snap
	var out []string
	seen := map[string]bool{}
	for _, l := range s.Listeners {
		chains := l.FilterChains
		if l.DefaultChain != nil {
			chains = append(chains[:len(chains):len(chains)], *l.DefaultChain)
		}
		for _, fc := range chains {
			if fc.HTTP == nil || fc.HTTP.RDSName == "" || seen[fc.HTTP.RDSName] {
				continue
			}
			seen[fc.HTTP.RDSName] = true
			if _, ok := s.Routes[fc.HTTP.RDSName]; !ok {
				out = append(out, "route config "+fc.HTTP.RDSName)
			}
		}
	}
	for name, c := range s.Clusters {
		if c.Type != resource.EDS {
			continue
		}
		svc := c.ServiceName
		if svc == "" {
			svc = name
		}
		if _, ok := s.Endpoints[svc]; !ok {
			out = append(out, "endpoints of "+name)
		}
	}
	sort.Strings(out)
	return out
}
