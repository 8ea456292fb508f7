package forward

import (
	"bufio"
	"net"
	"net/http"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// CONNECT tunnels through the explicit proxy: how a local-mode app reaches an opaque TCP
// service. The listener (proxy) chooses what the CONNECT's port runs, as original_dst
// would: a tcp_proxy chain (Connect), or an HTTP chain whose requests it serves inside the
// tunnel (OpenTunnel). What the client hears (200, or a refusal) is decided here, and a
// refusal is recorded like any other local reply (access log, request metrics).

// blackHole is Istio's cluster for traffic REGISTRY_ONLY refuses.
const blackHole = "BlackHoleCluster"

// Connect serves a CONNECT whose port runs tp (the port's tcp_proxy chain, else the
// default chain's): the tunnel is answered 200 and run by ServeTCP. Without a tcp_proxy,
// or to BlackHoleCluster (REGISTRY_ONLY), it is refused with 502 NR.
func (f *Forwarder) Connect(w http.ResponseWriter, r *http.Request, in Inbound, tp *resource.TCPProxy) {
	if tp == nil || tp.Cluster == blackHole {
		_, port, _ := net.SplitHostPort(in.OriginalDst)
		x := f.newExchange(w, r, in)
		defer x.finish()
		x.reply(&Reply{Status: http.StatusBadGateway, Flag: streaminfo.NoRouteFound, Details: "route_not_found",
			Explanation: "no listener for port " + port + " and the outbound traffic policy is REGISTRY_ONLY (BlackHoleCluster)"})
		return
	}
	down, ok := f.OpenTunnel(w, r, in)
	if !ok {
		return
	}
	defer down.Close()
	f.ServeTCP(down, tp, in)
}

// OpenTunnel answers 200 to a CONNECT and returns the downstream side of the tunnel: the
// hijacked connection for HTTP/1.1, the request stream for HTTP/2. When the tunnel cannot
// be opened it records why and reports false.
func (f *Forwarder) OpenTunnel(w http.ResponseWriter, r *http.Request, in Inbound) (net.Conn, bool) {
	if r.ProtoMajor == 2 {
		w.WriteHeader(http.StatusOK)
		if err := http.NewResponseController(w).Flush(); err != nil {
			f.tunnelGone(w, r, in)
			return nil, false
		}
		return NewStreamConn(w, r, true), true
	}
	c, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		x := f.newExchange(w, r, in)
		defer x.finish()
		x.reply(&Reply{Status: http.StatusInternalServerError, Flag: streaminfo.DownstreamConnectionTermination, Details: "downstream_hijack_failed",
			Explanation: "the downstream connection cannot be taken over for the tunnel: " + err.Error()})
		return nil, false
	}
	if _, err := c.Write([]byte("HTTP/1.1 200 OK\r\n\r\n")); err != nil {
		_ = c.Close()
		f.tunnelGone(w, r, in)
		return nil, false
	}
	if buf.Reader.Buffered() > 0 {
		return &bufferedConn{Conn: c, r: buf.Reader}, true
	}
	return c, true
}

// tunnelGone records a CONNECT whose client went away while its 200 was sent.
func (f *Forwarder) tunnelGone(w http.ResponseWriter, r *http.Request, in Inbound) {
	x := f.newExchange(w, r, in)
	x.info.ResponseCode = http.StatusOK
	x.downstreamGone()
	x.finish()
}

// bufferedConn is a hijacked connection read through the server's buffer, which holds
// the tunnel's first bytes when the client sent them with the CONNECT.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// CloseWrite passes a half-close on to the TCP connection.
func (c *bufferedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
