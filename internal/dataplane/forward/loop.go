package forward

import (
	"crypto/rand"
	"encoding/hex"
	"hash/fnv"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// Forwarding loops and connection bounds: no configuration mistake may turn one request
// into thousands of connections.
//
//   - An upstream address that is the listener the request came in on (a WorkloadEntry
//     whose app address is its own address: the inbound endpoint is the sidecar's own
//     inbound port), or, for inbound traffic, any listener of the proxy (the app is never
//     the proxy), is never connected to: 502 UF, "forwarding loop" (Inbound.Own). An
//     outbound request to the workload's own service reaches its own inbound listener
//     legitimately, and does.
//   - Each listener adds a token to x-lucid-hops on the requests it forwards: random per
//     proxy process and listener, so no client can guess it. A request that arrives with
//     the token of the listener it arrives on has been here before: 508 DPE. So does one
//     that crossed maxHops listeners. The header is removed from requests delivered to
//     the application (inbound), so applications never see or propagate it.
//   - A cluster whose circuit breaker sets no connection limit (Istio sets 2^32-1) is
//     bounded by Envoy's default max_connections, 1024: a request that would need a
//     connection beyond it gets 503 UO.

// hdrHops is the loop marker's header.
const hdrHops = "X-Lucid-Hops"

// maxHops is how many listeners a request may cross.
const maxHops = 32

// defaultMaxConnections is Envoy's max_connections default, the bound for clusters that
// set none (a variable only so that a test can lower it).
var defaultMaxConnections int64 = 1024

// detailsLoop is %RESPONSE_CODE_DETAILS% of a loop's local reply.
const detailsLoop = "forwarding_loop_detected"

// newHopSeed is the proxy process's secret part of every hop token.
func newHopSeed() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// hopToken is listener's token in x-lucid-hops.
func (f *Forwarder) hopToken(listener string) string {
	if tok, ok := f.hopTokens.get(listener); ok {
		return tok
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(f.hopSeed))
	_, _ = h.Write([]byte(listener))
	tok := strconv.FormatUint(h.Sum64(), 36)
	f.hopTokens.put(listener, tok) // listener names come from the configuration
	return tok
}

// looped answers a request that has passed this listener before, or too many listeners
// (true: answered).
func (x *exchange) looped() bool {
	if x.lacks(http1.FieldXLucidHops) {
		return false
	}
	vs := x.r.Header[hdrHops] // canonical already: no Values (it canonicalises each time)
	if len(vs) == 0 {
		return false
	}
	tok := x.f.hopToken(x.in.Listener)
	n := 0
	for _, v := range vs {
		for t := range strings.SplitSeq(v, ",") {
			n++
			if strings.TrimSpace(t) == tok {
				x.reply(&Reply{Status: http.StatusLoopDetected, Flag: streaminfo.DownstreamProtocolError, Details: detailsLoop,
					Body: "forwarding loop detected", Explanation: "forwarding loop: this request already passed listener " +
						x.in.Listener + " of this proxy (x-lucid-hops); the route or endpoint that sent it back here is the mistake"})
				return true
			}
		}
	}
	if n >= maxHops {
		x.reply(&Reply{Status: http.StatusLoopDetected, Flag: streaminfo.DownstreamProtocolError, Details: detailsLoop,
			Body: "forwarding loop detected", Explanation: "forwarding loop: this request crossed " + strconv.Itoa(n) +
				" proxy listeners (x-lucid-hops), the most allowed is " + strconv.Itoa(maxHops)})
		return true
	}
	return false
}

// markHop adds this listener's token to the upstream request's x-lucid-hops, or removes
// the header from a request delivered to the application.
func (x *exchange) markHop() {
	if x.in.Direction == "inbound" {
		// Whether or not the client sent one: the authorization chain (an ext_authz
		// server's or a JWT claim's headers) may have set it upstream. Listed fields
		// are the downstream's and the proxy's: none when the request had none.
		if !x.listed || !x.lacks(http1.FieldXLucidHops) {
			x.upDel(hdrHops) // canonical
		}
		return
	}
	tok := x.f.hopToken(x.in.Listener)
	if x.listed { // no name twice in a list
		if prior := x.upGet(hdrHops); prior != "" {
			tok = prior + ", " + tok
		}
	} else if prior := x.up.header[hdrHops]; len(prior) > 0 {
		tok = strings.Join(prior, ", ") + ", " + tok
	}
	x.upSet(hdrHops, tok)
}

// ownUpstream is the reply for an upstream host the proxy itself listens on (nil when
// the host is elsewhere).
func ownUpstream(in *Inbound, addr, cluster string) *Reply {
	arrival := in.LocalAddr.IsValid() && isAddrPort(addr, in.LocalAddr)
	if !arrival && (in.Direction != "inbound" || !in.Own[addr]) {
		return nil
	}
	return &Reply{Status: http.StatusBadGateway, Flag: streaminfo.UpstreamConnectionFailure, Details: detailsLoop,
		Body: "forwarding loop detected", Explanation: "forwarding loop: endpoint " + addr + " of cluster " + cluster +
			" is this proxy's own listener, so the request would come straight back (check the WorkloadEntry's app address " +
			"or the ServiceEntry's endpoints)"}
}

// isAddrPort says whether addr ("ip:port", as hosts are keyed) is ap, without building
// ap's string on the heap (this runs for every request). The ports are compared first:
// an upstream seldom listens on the port the request came in on, and that test needs no
// string.
func isAddrPort(addr string, ap netip.AddrPort) bool {
	if !hasPort(addr, ap.Port()) {
		return false
	}
	var buf [64]byte // any IPv4 or IPv6 address and port; a longer zone grows it
	return addr == string(ap.AppendTo(buf[:0]))
}

// hasPort says whether addr ends in ":port", port in decimal as AddrPort writes it.
func hasPort(addr string, port uint16) bool {
	i := len(addr)
	for {
		i--
		if i < 0 || addr[i] != byte('0'+port%10) {
			return false
		}
		if port /= 10; port == 0 {
			return i > 0 && addr[i-1] == ':'
		}
	}
}

// connectionBound is the most connections a cluster may have open: its max_connections,
// or Envoy's default where Istio set none (2^32-1).
func connectionBound(limit uint32) int64 {
	if limit == 0 || limit >= math.MaxInt32 {
		return defaultMaxConnections
	}
	return int64(limit)
}

// overConnections answers a request that would need a connection beyond the cluster's
// bound: every connection is busy with a request and the bound is reached (true:
// answered). A configured max_connections is the pool's (requests wait as pending).
func (x *exchange) overConnections(active int64) bool {
	limit := x.cl.Config().MaxConnections
	if limit != 0 && limit < math.MaxInt32 {
		return false
	}
	stats := x.cl.Stats()
	if active <= defaultMaxConnections || stats.UpstreamCxActive.Load() < defaultMaxConnections {
		return false
	}
	stats.UpstreamRqActive.Add(-1)
	stats.UpstreamCxOverflow.Add(1)
	x.chargeLocal(http.StatusServiceUnavailable)
	x.reply(&Reply{Flag: streaminfo.UpstreamOverflow, Status: http.StatusServiceUnavailable,
		Body:    "upstream connect error or disconnect/reset before headers. reset reason: overflow",
		Details: "upstream_reset_before_response_started{overflow}",
		Explanation: "cluster " + x.cl.Config().Name + " has " + strconv.FormatInt(defaultMaxConnections, 10) +
			" connections, all busy: Envoy's default max_connections bounds a cluster whose DestinationRule sets no " +
			"connectionPool.tcp.maxConnections (a forwarding loop or a stuck upstream looks like this)"})
	return true
}
