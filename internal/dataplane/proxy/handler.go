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
		tg, dst := sk.target.Load(), sk.dst
		cv := valuesOf(r) // connvalues.go: the connection's addresses, chain, peer
		local, remote := cv.local, cv.remote
		if c := cv.captured; c != nil { // capture.go: the listener the original destination picked
			tg, dst, local = c.target, c.dst, c.local
		}
		if tg.kind == kindExplicit {
			p.serveExplicit(w, r, t, tg, local, remote)
			return
		}
		l := t.snap.Listeners[tg.listener]
		var fc *resource.FilterChain
		if l != nil {
			fc = ChainFor(l, tg.chainPort)
		}
		if cv.chain != nil { // gateway.go: chosen per connection (SNI, TLS)
			fc = cv.chain
		}
		in := forward.Inbound{Listener: tg.listener, Direction: direction(l), LocalAddr: local, RemoteAddr: remote, OriginalDst: dst, Own: t.own,
			Peer: cv.peer, Checked: cv.checked}
		if cv.captured != nil {
			in.OriginalSrc = p.originalSource(l, remote, dst) // capture_origsrc.go: TPROXY
		}
		var hcm *resource.HTTPManager
		if fc != nil {
			hcm = fc.HTTP
		}
		if p.admitRequest(w, r, in, hcm) { // http1.go: refused heads, HTTP/2 limits
			return
		}
		if fc == nil || fc.HTTP == nil {
			// The socket outlived its chain (a config change raced this request).
			in.RouteConfigName = "(none)"
			p.opts.Forwarder.Serve(w, r, in)
			return
		}
		in.HTTP, in.Authz = fc.HTTP, t.httpAuthz(fc.HTTP) // authz.go
		t, rc, name := p.chainRoutes(r, t, fc.HTTP)
		rc = t.withoutTLS(rc, r) // tls_redirect.go: require_tls
		in.Routes, in.RouteConfigName = t.routeTable(rc), name
		p.opts.Forwarder.Serve(w, r, in)
	})
}

// serveExplicit runs virtualOutbound as an explicit HTTP proxy: the destination comes
// from the absolute URI or Host (an HTTP/2 extended CONNECT's :authority), and the request
// is handed to the outbound listener for that port exactly as original_dst would; without
// one, the default chain applies. A CONNECT opens a tunnel (connect.go).
func (p *Proxy) serveExplicit(w http.ResponseWriter, r *http.Request, t *table, tg *want, local, remote netip.AddrPort) {
	cv := valuesOf(r)
	in := forward.Inbound{Listener: tg.listener, Direction: "outbound", LocalAddr: local, RemoteAddr: remote, Own: t.own, Peer: cv.peer, Checked: cv.checked}
	if p.admitRequest(w, r, in, nil) {
		return // http1.go: refused heads, HTTP/2 limits
	}
	if r.Method == http.MethodConnect && r.Header.Get(":protocol") == "" {
		p.serveConnect(w, r, t, tg) // connect.go
		return
	}
	host, port := Destination(r)
	dst := net.JoinHostPort(host, fmt.Sprint(port))
	in.Listener, in.OriginalDst = "", dst
	if l := t.outboundByPort[port]; l != nil {
		if fc := ChainFor(l, uint32(port)); fc != nil && fc.HTTP != nil {
			in.Listener, in.HTTP, in.Authz = l.Name, fc.HTTP, t.httpAuthz(fc.HTTP) // authz.go
			t, rc, name := p.chainRoutes(r, t, fc.HTTP)
			in.Routes, in.RouteConfigName = t.routeTable(rc), name
			p.opts.Forwarder.Serve(w, r, in)
			return
		}
	}
	// No listener for the port: virtualOutbound's default chain (PassthroughCluster for
	// ALLOW_ANY, BlackHoleCluster for REGISTRY_ONLY), which Envoy runs as tcp_proxy.
	in.Listener = tg.listener
	in.RouteConfigName = "(default chain of " + tg.listener + ")"
	rc := t.passthrough[tg.listener]
	if rc == nil { // the socket outlived its listener (a config change raced this request)
		rc = PassthroughRoutes(nil, dst)
	}
	in.Routes = t.routeTable(rc)
	p.opts.Forwarder.Serve(w, r, in)
}

// chainRoutes is the route configuration of an HTTP chain and its name. One named by RDS
// that has not arrived is waited for (warming.go); t is the table that has it.
func (p *Proxy) chainRoutes(r *http.Request, t *table, h *resource.HTTPManager) (*table, *resource.RouteConfig, string) {
	rc, name := RouteConfigOf(t.snap, h)
	if rc == nil && h.RDSName != "" {
		t = p.awaitRoutes(r, h.RDSName)
		rc, name = RouteConfigOf(t.snap, h)
	}
	return t, rc, name
}

// RouteConfigOf is the route configuration an HTTP chain names in s (inline, else by
// RDS name; nil when it has not arrived) and its name.
func RouteConfigOf(s *resource.Snapshot, h *resource.HTTPManager) (*resource.RouteConfig, string) {
	if h.Routes != nil {
		return h.Routes, h.Routes.Name
	}
	return s.Routes[h.RDSName], h.RDSName
}

func direction(l *resource.Listener) string {
	if l != nil && l.Direction == resource.Inbound {
		return "inbound"
	}
	return "outbound"
}

// slogErrorLog routes net/http's server errors (bad requests, TLS noise) to debug logs.
func slogErrorLog(l *slog.Logger) *log.Logger {
	return slog.NewLogLogger(l.Handler(), slog.LevelDebug)
}
