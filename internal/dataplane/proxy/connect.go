package proxy

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/xconnect"
)

// net/http has read GODEBUG=http2xconnect=1 (set by xconnect before net/http's init):
// HTTP/2 listeners accept extended CONNECT. Children do not inherit the setting.
func init() { xconnect.Restore() }

// CONNECT through the explicit proxy: how a local-mode app reaches an opaque TCP service.
//
// With iptables, an app's connection to a TCP service port is redirected to
// virtualOutbound, whose original_dst hands it to the 0.0.0.0_<port> (or <ip>_<port>)
// tcp_proxy listener, or to the passthrough default chain. Without capture the app asks
// the explicit proxy instead: "CONNECT host:port", and the tunnel that follows is exactly
// that connection. The port picks the listener as original_dst would; a port with an HTTP
// listener serves the HTTP inside the tunnel through that listener's routes, so `curl
// -p -x` works for both.

// serveConnect picks what a CONNECT's port runs, as original_dst would: the outbound
// listener's chain for the port (HTTP: served inside the tunnel by tunnelHTTP), else the
// default chain. forward answers, refuses or runs the tcp_proxy (forward.Connect).
func (p *Proxy) serveConnect(w http.ResponseWriter, r *http.Request, t *table, tg *want) {
	host, port := Destination(r)
	dst := net.JoinHostPort(host, fmt.Sprint(port))
	cv := valuesOf(r) // connvalues.go
	in := forward.Inbound{Listener: tg.listener, Direction: "outbound", LocalAddr: cv.local, RemoteAddr: cv.remote, OriginalDst: dst, Own: t.own,
		Peer: cv.peer, Checked: cv.checked}
	var tp *resource.TCPProxy
	if l := t.outboundByPort[port]; l != nil {
		if fc := ChainFor(l, uint32(port)); fc != nil {
			if fc.HTTP != nil {
				p.tunnelHTTP(w, r, port, tg, in)
				return
			}
			tp, in.Listener = fc.TCP, l.Name
		}
	}
	if tp == nil {
		if vo := t.snap.Listeners[tg.listener]; vo != nil && vo.DefaultChain != nil {
			tp = vo.DefaultChain.TCP
		}
	}
	p.opts.Forwarder.Connect(w, r, in, tp)
}

// tunnelHTTP serves the HTTP requests inside a CONNECT tunnel to an HTTP port through that
// port's outbound listener, as if each had been sent to the explicit proxy directly.
func (p *Proxy) tunnelHTTP(w http.ResponseWriter, r *http.Request, port uint16, tg *want, in forward.Inbound) {
	down, ok := p.opts.Forwarder.OpenTunnel(w, r, in)
	if !ok {
		return
	}
	ln := &oneConnListener{c: http1.NewConn(down, p.requestLimits(nil), nil), done: make(chan struct{})}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Protocols:         &protos,
		HTTP2:             p.serverHTTP2(),
		ReadHeaderTimeout: time.Minute,
		IdleTimeout:       p.idleTimeout(nil),
		ErrorLog:          slogErrorLog(p.log),
		ConnContext:       connContext, // http1.go: the requests inside are checked too
		Handler: http.HandlerFunc(func(w http.ResponseWriter, in *http.Request) {
			t := p.cur.Load()
			remote, _ := netip.ParseAddrPort(r.RemoteAddr)
			if in.URL.Host == "" {
				in.URL.Host = net.JoinHostPort(hostOnly(in.Host), fmt.Sprint(port))
				in.Host = in.URL.Host
			}
			p.serveExplicit(w, in, t, tg, localAddr(r), remote)
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateClosed || s == http.StateHijacked {
				ln.closeOnce()
			}
		},
	}
	_ = srv.Serve(ln)
	<-ln.done
	_ = srv.Close()
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}
