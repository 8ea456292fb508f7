package proxy

import (
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"

	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// handler serves HTTP on a socket: a listener's HTTP chain, or the explicit proxy.
func (p *Proxy) handler(sk *socket) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sk.draining.Load() && r.ProtoMajor == 1 {
			w.Header().Set("Connection", "close") // drain.go: one last answer, then the connection closes
		}
		t := p.cur.Load()
		tg := sk.target.Load()
		local := localAddr(r)
		remote, _ := netip.ParseAddrPort(r.RemoteAddr)
		if sk.kind == kindExplicit {
			p.serveExplicit(w, r, t, tg, local, remote)
			return
		}
		l := t.snap.Listeners[tg.listener]
		var fc *resource.FilterChain
		if l != nil {
			fc = ChainFor(l, tg.chainPort)
		}
		if sel := selectedChain(r); sel != nil { // gateway.go: chosen per connection (SNI, TLS)
			fc = sel
		}
		in := forward.Inbound{Listener: tg.listener, Direction: direction(l), LocalAddr: local, RemoteAddr: remote, OriginalDst: sk.dst}
		if fc == nil || fc.HTTP == nil {
			// The socket outlived its chain (a config change raced this request).
			in.RouteConfigName = "(none)"
			p.opts.Forwarder.Serve(w, r, in)
			return
		}
		in.HTTP = fc.HTTP
		in.Routes, in.RouteConfigName = routesOf(t, fc.HTTP)
		if in.Routes == nil && fc.HTTP.RDSName != "" {
			t = p.awaitRoutes(r, fc.HTTP.RDSName) // warming.go
			in.Routes, in.RouteConfigName = routesOf(t, fc.HTTP)
		}
		in.Routes = t.withoutTLS(in.Routes, r) // tls_redirect.go: require_tls
		in.Table = t.routeTable(in.Routes)     // routetables.go
		p.opts.Forwarder.Serve(w, r, in)
	})
}

// serveExplicit runs virtualOutbound as an explicit HTTP proxy: the destination comes
// from the absolute URI or Host, and the request is handed to the outbound listener for
// that port exactly as original_dst would; without one, the default chain applies.
func (p *Proxy) serveExplicit(w http.ResponseWriter, r *http.Request, t *table, tg *want, local, remote netip.AddrPort) {
	if r.Method == http.MethodConnect {
		p.serveConnect(w, r, t, tg) // connect.go
		return
	}
	host, port := Destination(r)
	dst := net.JoinHostPort(host, fmt.Sprint(port))
	in := forward.Inbound{Direction: "outbound", LocalAddr: local, RemoteAddr: remote, OriginalDst: dst}
	if l := t.outboundByPort[port]; l != nil {
		if fc := ChainFor(l, uint32(port)); fc != nil && fc.HTTP != nil {
			in.Listener, in.HTTP = l.Name, fc.HTTP
			in.Routes, in.RouteConfigName = routesOf(t, fc.HTTP)
			if in.Routes == nil && fc.HTTP.RDSName != "" {
				t = p.awaitRoutes(r, fc.HTTP.RDSName) // warming.go
				in.Routes, in.RouteConfigName = routesOf(t, fc.HTTP)
			}
			in.Table = t.routeTable(in.Routes)
			p.opts.Forwarder.Serve(w, r, in)
			return
		}
	}
	// No listener for the port: virtualOutbound's default chain (PassthroughCluster for
	// ALLOW_ANY, BlackHoleCluster for REGISTRY_ONLY), which Envoy runs as tcp_proxy.
	in.Listener = tg.listener
	in.RouteConfigName = "(default chain of " + tg.listener + ")"
	in.Routes = t.passthrough[tg.listener]
	if in.Routes == nil { // the socket outlived its listener (a config change raced this request)
		in.Routes = PassthroughRoutes(nil, dst)
	}
	in.Table = t.routeTable(in.Routes)
	p.opts.Forwarder.Serve(w, r, in)
}

func routesOf(t *table, h *resource.HTTPManager) (*resource.RouteConfig, string) {
	if h.Routes != nil {
		return h.Routes, h.Routes.Name
	}
	return t.snap.Routes[h.RDSName], h.RDSName
}

func direction(l *resource.Listener) string {
	if l != nil && l.Direction == resource.Inbound {
		return "inbound"
	}
	return "outbound"
}

func localAddr(r *http.Request) netip.AddrPort {
	a, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if ta, ok := a.(*net.TCPAddr); ok { // without formatting and parsing it per request
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()) // as String prints it
	}
	if a != nil {
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			return ap
		}
	}
	return netip.AddrPort{}
}

// slogErrorLog routes net/http's server errors (bad requests, TLS noise) to debug logs.
func slogErrorLog(l *slog.Logger) *log.Logger {
	return slog.NewLogLogger(l.Handler(), slog.LevelDebug)
}
