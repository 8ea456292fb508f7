package proxy

import (
	"crypto/tls"
	"net"
	"net/http"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// Every plaintext HTTP/1.1 connection (and every TLS one that did not negotiate h2) is
// read through an http1.Conn before net/http sees it: Envoy's codec rules, the
// listener's request limits, and body framing that cannot be read two ways (package
// http1). What it refuses reaches the handler as a stand-in request, answered by
// forward.Reject. HTTP/2 requests get the same header limits in the handler.

// DefaultIdleTimeout is how long a downstream connection may stay without requests before
// it is closed (Envoy's common_http_protocol_options.idle_timeout default: 1 h).
const DefaultIdleTimeout = time.Hour

// requestLimits are the limits of a listener's HTTP connection manager h (nil: the
// explicit proxy's): its own settings, else the proxy's (ProxyConfig), else Envoy's.
func (p *Proxy) requestLimits(h *resource.HTTPManager) http1.Limits {
	l := p.opts.RequestLimits
	if h != nil {
		if h.MaxRequestHeadersKB > 0 {
			l.MaxRequestHeadersKB = int(h.MaxRequestHeadersKB)
		}
		if h.MaxHeadersCount > 0 {
			l.MaxHeadersCount = int(h.MaxHeadersCount)
		}
		l.AcceptHTTP10 = l.AcceptHTTP10 || h.AcceptHTTP10
	}
	return l
}

// idleTimeout is a listener's downstream idle timeout: the proxy's setting (Istio's
// IDLE_TIMEOUT proxy metadata), else the connection manager's (1 h unless set; 0 there
// means none).
func (p *Proxy) idleTimeout(h *resource.HTTPManager) time.Duration {
	switch {
	case p.opts.IdleTimeout > 0:
		return p.opts.IdleTimeout
	case h != nil && h.IdleTimeout > 0:
		return h.IdleTimeout
	case h != nil:
		return 0
	}
	return DefaultIdleTimeout
}

// socketHTTP is the connection manager a plain HTTP socket runs now (nil for the explicit
// proxy, whose requests go to the listener of their port).
func (p *Proxy) socketHTTP(sk *socket) *resource.HTTPManager {
	if sk.kind != kindHTTP {
		return nil
	}
	tg := sk.target.Load()
	if l := p.cur.Load().snap.Listeners[tg.listener]; l != nil {
		if fc := ChainFor(l, tg.chainPort); fc != nil {
			return fc.HTTP
		}
	}
	return nil
}

// checkedListener wraps each accepted connection in an http1.Conn with the socket's
// limits at the time.
type checkedListener struct {
	net.Listener
	limits func() http1.Limits
}

func (l *checkedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return http1.NewConn(c, l.limits(), nil), nil
}

// checkedConn is the connection a router's HTTP chain serves: checked unless it runs
// HTTP/2 over TLS (net/http must see the *tls.Conn to serve h2; HTTP/2 framing has no
// HTTP/1.1 ambiguity).
func (p *Proxy) checkedConn(c net.Conn, fc *resource.FilterChain) net.Conn {
	lim := p.requestLimits(fc.HTTP)
	if tc, ok := c.(*tls.Conn); ok {
		st := tc.ConnectionState()
		if st.NegotiatedProtocol == "h2" {
			return c
		}
		if fc.TLS != nil && fc.TLS.CertificateSDS != "" { // mtls.go: a sidecar's h2 to its peer
			return http1.NewMeshConn(c, lim, &st)
		}
		return http1.NewConn(c, lim, &st)
	}
	return http1.NewConn(c, lim, nil)
}

// serverLimits sets what net/http itself enforces so that it never refuses first: the
// checked connection and the handler apply the listener's limits with Envoy's replies.
func serverLimits(srv *http.Server, lim http1.Limits) {
	srv.MaxHeaderBytes = max(http.DefaultMaxHeaderBytes, 2*lim.HeaderBytes()+64<<10)
}

// admitRequest runs before a request is routed: a stand-in for a refused head, or an
// HTTP/2 request over the limits, is answered with forward.Reject (true: answered). A
// request after which the connection carries no checked request (an upgrade, CONNECT)
// closes the connection unless it takes it over. TLS under a checked connection is
// given to the request.
func (p *Proxy) admitRequest(w http.ResponseWriter, r *http.Request, in forward.Inbound, h *resource.HTTPManager) bool {
	if r.ProtoMajor != 1 {
		if rj := http1.CheckHTTP2(r, p.requestLimits(h)); rj != nil {
			p.opts.Forwarder.Reject(w, r, in, rj)
			return true
		}
		return false
	}
	g := in.Checked
	if g == nil {
		return false
	}
	rj, last := g.Next()
	if rj != nil {
		p.opts.Forwarder.Reject(w, r, in, rj)
		return true
	}
	if last {
		w.Header().Set("Connection", "close")
	}
	if st := g.TLS(); st != nil && r.TLS == nil {
		r.TLS = st
	}
	return false
}
