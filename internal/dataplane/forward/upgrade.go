package forward

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/cluster"
	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
	"github.com/lucid-mesh/lucid/internal/dataplane/pool"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// HTTP/1.1 upgrades (WebSocket) through the sidecar.
//
// Istio enables the websocket upgrade on every HTTP connection manager; Envoy then sends
// the upgrade request on a fresh upstream connection and, after 101 Switching Protocols,
// pipes bytes both ways until either side closes. Lucid does the same: the upstream
// connection is dialled outside the pool (with the cluster's connect timeout and
// keepalive), never reused, tracked on its host (so it drains when the host leaves), and
// logged once when it ends with status 101. A non-101 answer is passed on as a normal
// response.
//
// HTTP/2 extended CONNECT (RFC 8441) takes the same path and is bridged to the HTTP/1.1
// upgrade (xconnect.go).

// upgradeType is the protocol an HTTP/1.1 request asks to switch to ("" when none).
func upgradeType(r *http.Request) string {
	if r.ProtoMajor != 1 {
		return extendedProtocol(r)
	}
	for _, v := range r.Header["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if http1.EqualFoldASCII(textproto.TrimString(f), "upgrade") {
				if up := r.Header.Get("Upgrade"); !http1.EqualFoldASCII(strings.TrimSpace(up), "h2c") {
					return up
				}
				return "" // Envoy ignores h2c upgrades: the request goes on as HTTP/1.1
			}
		}
	}
	return ""
}

// upgrade runs an upgrade request. It reports false when the request is not one. Small
// enough to be inlined: an HTTP/1.x request without a Connection field (most of them;
// exchange.lacks, spelled out to fit) is not one, and does not call into the rest.
func (x *exchange) upgrade() bool {
	if x.fieldsKnown && x.fields&http1.FieldConnection == 0 && x.r.ProtoMajor == 1 {
		return false
	}
	return x.upgradeRequest()
}

// upgradeRequest is upgrade for a request that may be one.
func (x *exchange) upgradeRequest() bool {
	up := upgradeType(x.r)
	if up == "" || x.f.o.Pools == nil {
		return false
	}
	host, rp := PickHost(x.cl, x.r, x.in.OriginalDst) // decide.go
	if rp == nil {
		rp = ownUpstream(&x.in, host.Addr, x.cl.Config().Name) // loop.go
	}
	if rp != nil {
		x.reply(rp)
		return true
	}
	x.info.UpstreamHost = host.Addr
	x.info.Attempts = 1
	x.fillPeer(host)
	stats := x.cl.Stats()
	stats.UpstreamRqActive.Add(1) // no circuit breaker for upgrades; end gives it back
	a := x.begin(x.r.Context(), nil, 1, host)
	defer a.end()

	d := x.f.o.Pools.Dialer(x.cl.Config(), host.Addr)
	x.in.OriginalSrc.ConfigureDialer(d)
	conn, err := x.f.dialUpstream(x.r.Context(), d, x.cl.Config().Name, x.in.OriginalSrc.Target(host.Addr)) // upstream_tls.go
	if err != nil {
		if x.r.Context().Err() != nil {
			x.downstreamGone()
			return true
		}
		host.Stats.CxConnectFail.Add(1)
		stats.UpstreamCxConnectFail.Add(1)
		f := resetFailure(pool.ReasonRemoteConnectionFailure, "", false)
		detail := err.Error()
		var ce *pool.ConnectError
		if errors.As(err, &ce) {
			f = resetFailure(ce.Reason, ce.Transport, false)
			detail = connectDetail(ce, x.cl.Config().ConnectTimeout)
		}
		f.Explanation = "connect to " + host.Addr + " for cluster " + x.cl.Config().Name + " failed: " + detail
		x.info.UpstreamTransportFailureReason = f.transport
		x.reply(&f.Reply)
		return true
	}
	defer conn.Close()
	a.UpstreamConn(conn, pool.LocalAddress(conn))

	h := x.upHeader().Clone()
	h.Del(":protocol")
	h.Set("Connection", "Upgrade")
	h.Set("Upgrade", up)
	method := x.r.Method
	if x.r.ProtoMajor == 2 { // extended CONNECT (xconnect.go)
		method = http.MethodGet
		bridgeHeaders(h, up)
	}
	req := &http.Request{
		Method: method, URL: &url.URL{Path: x.up.path.Path, RawPath: x.up.path.RawPath, RawQuery: x.up.path.RawQuery},
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: h, Host: x.up.host,
	}
	br := bufio.NewReader(conn)
	var resp *http.Response
	if err = req.Write(conn); err == nil {
		resp, err = http.ReadResponse(br, req)
	}
	if err != nil {
		f := resetFailure(pool.ReasonConnectionTermination, "", false)
		f.Explanation = "upstream " + host.Addr + " (cluster " + x.cl.Config().Name + ") failed the " + up + " upgrade before answering: " + err.Error()
		x.reply(&f.Reply)
		return true
	}
	defer resp.Body.Close()
	x.charge(resp.StatusCode, host)
	if resp.StatusCode != http.StatusSwitchingProtocols {
		x.respond(x.r.Context(), a, resp)
		return true
	}
	if x.r.ProtoMajor == 2 {
		x.switchExtendedConnect(resp, br, conn, a)
		return true
	}
	x.switchProtocols(resp, br, conn, a)
	return true
}

// switchProtocols answers 101 downstream and pipes both connections until they close.
func (x *exchange) switchProtocols(resp *http.Response, ubuf *bufio.Reader, uconn net.Conn, a *attempt) {
	info := x.info
	info.UpstreamServiceTime = time.Since(a.start)
	info.ResponseCode = http.StatusSwitchingProtocols
	info.ResponseCodeDetails = "via_upstream"
	dconn, dbuf, err := http.NewResponseController(x.w).Hijack()
	if err != nil {
		info.ResponseCode = 0
		info.Flags |= streaminfo.DownstreamConnectionTermination
		info.LucidError = "the downstream connection cannot be taken over for the upgrade: " + err.Error()
		return
	}
	defer dconn.Close()
	// The 101 as the upstream sent it, hop-by-hop headers included (they are the upgrade).
	if err := resp.Write(dbuf); err != nil || dbuf.Flush() != nil {
		x.downstreamGone()
		return
	}
	// Bytes already read past the headers on either side go first.
	if n := ubuf.Buffered(); n > 0 {
		b, _ := ubuf.Peek(n)
		if _, err := dconn.Write(b); err != nil {
			x.downstreamGone()
			return
		}
		info.BytesSent += int64(n)
	}
	if n := dbuf.Reader.Buffered(); n > 0 {
		b, _ := dbuf.Peek(n)
		if _, err := uconn.Write(b); err != nil {
			return
		}
		info.BytesReceived += int64(n)
	}
	res, gone := pipeOnHost(a.host, cluster.HTTPStream, dconn, uconn, 0)
	info.BytesReceived += res.Received
	info.BytesSent += res.Sent
	if r := gone; r != nil {
		info.Flags |= streaminfo.LocalReset
		info.LucidError = info.Flags.String() + ": " + *r
	}
}
