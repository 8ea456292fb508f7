package forward

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"net"
	"net/http"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/cluster"
	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// HTTP/2 extended CONNECT (RFC 8441: WebSocket over HTTP/2) bridged to an HTTP/1.1
// upgrade, as Envoy does when the downstream speaks HTTP/2 and the upstream HTTP/1.1:
//
//	:method CONNECT, :protocol websocket, :path /chat   →   GET /chat HTTP/1.1
//	                                                        Connection: Upgrade
//	                                                        Upgrade: websocket
//	101 Switching Protocols                            →   :status 200
//
// after which the request stream's DATA frames and the upstream connection's bytes are
// piped both ways. HTTP/2 WebSocket clients send no Sec-WebSocket-Key (RFC 8441 drops
// the handshake's key and accept), but HTTP/1.1 WebSocket servers require one, so Lucid
// adds a random key when it is missing; the accept value is not passed downstream. Go's
// HTTP/2 server accepts :protocol only with http2xconnect enabled, which the binary does
// (internal/dataplane/xconnect).

// extendedProtocol is the :protocol of an HTTP/2 extended CONNECT ("" when r is not one).
func extendedProtocol(r *http.Request) string {
	if r.ProtoMajor == 2 && r.Method == http.MethodConnect {
		return r.Header.Get(":protocol")
	}
	return ""
}

// bridgeHeaders adapts the upstream upgrade request's headers h for an extended CONNECT
// of protocol up: a WebSocket key when the client sent none.
func bridgeHeaders(h http.Header, up string) {
	if !http1.EqualFoldASCII(up, "websocket") || h.Get("Sec-WebSocket-Key") != "" {
		return
	}
	var k [16]byte
	_, _ = rand.Read(k[:])
	h.Set("Sec-WebSocket-Key", base64.StdEncoding.EncodeToString(k[:]))
	if h.Get("Sec-WebSocket-Version") == "" {
		h.Set("Sec-WebSocket-Version", "13")
	}
}

// switchExtendedConnect answers 200 on the HTTP/2 stream after the upstream's 101 and
// pipes the stream and the upstream connection until either ends.
func (x *exchange) switchExtendedConnect(resp *http.Response, ubuf *bufio.Reader, uconn net.Conn, a *attempt) {
	info := x.info
	info.UpstreamServiceTime = time.Since(a.start)
	info.ResponseCode = http.StatusOK
	info.ResponseCodeDetails = "via_upstream"
	info.Notes = append(info.Notes, "HTTP/2 extended CONNECT bridged to an HTTP/1.1 "+resp.Header.Get("Upgrade")+" upgrade")
	h := x.w.Header()
	for k, v := range resp.Header {
		h[k] = v
	}
	removeHopHeaders(h, false)
	h.Del("Sec-WebSocket-Accept")
	x.w.WriteHeader(http.StatusOK)
	x.up.body = nil                         // the stream is read directly; finish must not take the replay body's count
	dconn := NewStreamConn(x.w, x.r, false) // WebSocket has no half-close
	defer dconn.Close()
	if err := dconn.rc.Flush(); err != nil {
		x.downstreamGone()
		return
	}
	if n := ubuf.Buffered(); n > 0 {
		b, _ := ubuf.Peek(n)
		if _, err := dconn.Write(b); err != nil {
			x.downstreamGone()
			return
		}
		info.BytesSent += int64(n)
	}
	res, gone := pipeOnHost(a.host, cluster.HTTPStream, dconn, uconn, 0)
	info.BytesReceived += res.Received
	info.BytesSent += res.Sent
	if r := gone; r != nil {
		info.Flags |= streaminfo.LocalReset
		info.LucidError = info.Flags.String() + ": " + *r
		x.abort = true // reset the stream: the client reconnects
	}
}
