// Package forward runs what a listener hands over, from the downstream client to an
// upstream endpoint and back: an HTTP request with Envoy's router semantics (Serve), an
// opaque TCP connection with Envoy's tcp_proxy (ServeTCP), and a CONNECT tunnel (Connect).
// It sits in the middle of the request path, the router and tcp_proxy side by side over
// the same cluster manager and pools, as in Envoy:
//
//	proxy (listener, chain) → forward: route (match) → retry loop → cluster (pick) → pool → app
//	                                   tcp_proxy ─────────────────→ cluster (pick) → dial → app
//
// Every reply the proxy generates itself (404 NR, 503 NC/UH/UF/UC/UO, 504 UT, faults,
// redirects, direct responses, refused tunnels, TCP connections closed for want of an
// upstream) is decided here, with Envoy's status, body, response flag and details, plus
// an x-lucid-error that explains it. The result of each request or connection is a
// streaminfo.Info handed to the observers (access log, stats) once it ends.
package forward

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/authz"
	"github.com/lucid-mesh/lucid/internal/dataplane/cluster"
	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
	"github.com/lucid-mesh/lucid/internal/dataplane/pool"
	"github.com/lucid-mesh/lucid/internal/dataplane/reqctx"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/route"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
	"github.com/lucid-mesh/lucid/internal/dataplane/tracing"
)

// Options configure a Forwarder.
type Options struct {
	Clusters *cluster.Manager
	Pools    *pool.Set
	// Observers (access log, stats) are called once per request after it ends, in order,
	// never concurrently for the same Info; they must not keep the Info.
	Observers []func(*streaminfo.Info)
	Self      streaminfo.Peer // this workload, for metrics labels
	// Identity is this workload's SPIFFE URI when it has a workload certificate ("" without
	// a CA): the source_principal of its mutual-TLS upstream connections.
	Identity string
	// ConnectionObservers get one Info per opaque TCP connection (tcp_proxy), as Istio's
	// access log has one line per TCP connection (empty method). See ServeTCP.
	ConnectionObservers []func(*streaminfo.Info)
	// ConnectionMetrics counts an opaque TCP connection opened and returns its counters
	// (Istio's istio_tcp_* metrics: stats.TCPOpened); nil: not counted. See ServeTCP.
	ConnectionMetrics func(*streaminfo.Info) ConnectionCounter
	Logger            *slog.Logger // the "router" logger
	// Tracers make the spans of listeners that trace (tracing.go); nil: no spans.
	Tracers *tracing.Providers
	// PeerMetadata is this workload's metadata exchange headers (peermeta.go).
	PeerMetadata PeerMetadata
	// Metrics and AccessLog get each finished request after the observers, with its
	// listener's Telemetry API settings (stats.RecordWith, accesslog.Router.Log;
	// telemetryapi.go); nil: none.
	Metrics   func(info *streaminfo.Info, ov *resource.StatsOverrides, h http.Header)
	AccessLog func(info *streaminfo.Info, logs []resource.AccessLog, h http.Header)
	// ConnectionAccessLog gets each finished opaque TCP connection after the connection
	// observers, with its tcp_proxy chain's access logs (nil: the proxy's own;
	// accesslog.Router.LogConnection); nil: none.
	ConnectionAccessLog func(info *streaminfo.Info, logs []resource.AccessLog)
}

// Forwarder serves matched requests. It is safe for concurrent use.
type Forwarder struct {
	o         Options
	log       *slog.Logger
	mirrors   sync.WaitGroup    // fire-and-forget mirror requests still running
	hopSeed   string            // loop.go: the secret part of this proxy's x-lucid-hops tokens
	hopTokens readCache[string] // loop.go: hopToken by listener name
	denied    denials           // authz.go: refusals per policy

	// peerID and peerValue are PeerMetadata as header field values, shared by every
	// request and answer (peermeta.go). Nothing writes into them; their capacity is 1, so
	// an append copies.
	peerID, peerValue []string
	// peerClean: both values are as a writer writes them (cleanValue), so an answer's
	// writer need not check them each time (AddCleanField).
	peerClean bool
}

// New returns a Forwarder.
func New(o Options) *Forwarder {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Forwarder{o: o, log: log, hopSeed: newHopSeed()}
	if pm := o.PeerMetadata; pm.Value != "" {
		// Written as they are on listed requests (uplist.go): no byte that would end a
		// field line, whatever the node's name.
		f.peerID, f.peerValue = []string{http1.SpaceLineBreaks(pm.ID)}, []string{http1.SpaceLineBreaks(pm.Value)}
		f.peerClean = cleanValue(f.peerID[0]) && cleanValue(f.peerValue[0])
	}
	return f
}

// cleanValue says whether a writer would write v as it is: no CR or LF, and no space or
// tab at either end to trim (fieldsAdopter's AddCleanField).
func cleanValue(v string) bool {
	return !http1.HasLineBreak(v) && textproto.TrimString(v) == v
}

// Close waits for mirror requests still in flight (they end by their own timeout).
func (f *Forwarder) Close() { f.mirrors.Wait() }

// Inbound describes where a request (or an opaque connection) came in.
type Inbound struct {
	// Routes is the route configuration the listener's chain names, indexed for virtual
	// host selection (route.Compile, built once per applied configuration); nil when the
	// configuration named RouteConfigName has not arrived (the request gets 404 NR with an
	// explanation saying so).
	Routes          *route.Table
	RouteConfigName string
	HTTP            *resource.HTTPManager
	Listener        string // listener name, e.g. "virtualOutbound", "0.0.0.0_9080", "virtualInbound"
	Direction       string // "inbound" | "outbound"
	LocalAddr       netip.AddrPort
	RemoteAddr      netip.AddrPort
	OriginalDst     string // "host:port" the request was addressed to (for PassthroughCluster)
	// Own holds the addresses ("ip:port") the proxy listens on: inbound traffic sent to
	// one of them, like any request sent back to LocalAddr, is a forwarding loop (loop.go).
	Own map[string]bool
	// Authz is the chain's authorization filters (authz.go); nil or empty: none.
	Authz *authz.Chain
	// Peer is the verified peer of the downstream connection when the proxy terminated
	// its mutual TLS; nil on plaintext.
	Peer *Peer
	// Checked is the downstream connection's checked reader (http1.NewConn), which knows
	// why a request body's framing broke; nil when its requests are not checked so
	// (HTTP/2 over TLS).
	Checked *http1.Conn
	// OriginalSrc is the source of the upstream connections made for this downstream
	// (virtualInbound under TPROXY: the client's address, transparent and marked, Envoy's
	// original_src); zero: the cluster's usual source.
	OriginalSrc pool.OriginalSource
}

// infoPool recycles the per-request records (768 bytes each), zero (finish empties them).
var infoPool = sync.Pool{New: func() any { return new(streaminfo.Info) }}

// Errors used as context causes, to tell the route timeout from a per-try timeout.
var (
	errRouteTimeout  = errors.New("route timeout")
	errPerTryTimeout = errors.New("per-try timeout")
)

// Serve handles one downstream HTTP request end to end (HTTP/1.1 and HTTP/2 downstream),
// in the order net/http/httputil.ReverseProxy.ServeHTTP reads in: decide, prepare, then an
// upgrade or the retry loop, whose response (or local reply) goes downstream, and the
// record for the observers last.
//
// When the upstream fails after the response started, Serve resets the downstream stream
// by panicking with http.ErrAbortHandler, as ReverseProxy does; the observers have been
// called by then.
func (f *Forwarder) Serve(w http.ResponseWriter, r *http.Request, in Inbound) {
	x := f.newExchange(w, r, in)
	defer x.release() // after finish: the exchange is reused when nothing can reach it (release.go)
	defer x.finish()  // the observers get the record; then a stream to reset is reset
	x.serve()
	x.served = true // not reached when serve panics
}

// serve runs the exchange; Serve wraps it with the record and the release.
func (x *exchange) serve() {
	// A request this listener forwarded before comes back in a loop: 508 (loop.go).
	if x.looped() {
		return
	}
	x.startTelemetry() // peermeta.go, tracing.go
	// Path normalisation before anything reads the path (pathnorm.go), then
	// authorization on the normalised request (authz.go).
	if !x.normalizePath() || !x.authorize() {
		return
	}

	// Decide: virtual host and route, or the router's own reply (decide.go); fault
	// injection (fault.go).
	if !x.route(Decide(&x.in, x.r)) { // x.r: the normalised request
		return
	}
	// The cluster the route picks, and its connection pool.
	pl := x.target()
	if pl == nil {
		return
	}
	// Prepare what every attempt sends: headers, path, Host, replayable body (prepare.go).
	x.prepare()
	x.sendPeerMetadata() // peermeta.go
	// An upgrade (WebSocket, extended CONNECT) runs on a connection of its own
	// (upgrade.go); any other request goes through the retry loop (attempt.go), whose
	// last attempt's response respond.go sends, or a local reply (reply.go, failure.go).
	if x.upgrade() {
		return
	}
	x.forward(pl)
	x.sendMirrors() // mirror.go
}

// newExchange begins the exchange of a request that came in at in, with its record.
func (f *Forwarder) newExchange(w http.ResponseWriter, r *http.Request, in Inbound) *exchange {
	x := exchanges.Get().(*exchange) // release.go: zero but for its upstream request's memory
	x.f, x.w, x.r, x.in = f, w, r, in
	if fr, ok := w.(fieldReporter); ok {
		x.fields, x.fieldsKnown = fr.RequestFields(), true
	}
	x.info = x.record()
	x.pathURL = r.URL
	return x
}

// fieldReporter is a ResponseWriter whose server says which of http1.FieldOf's names the
// request's head had (h1server's RequestFields).
type fieldReporter interface{ RequestFields() http1.FieldSet }

// lacks says whether the downstream request surely has no field f (one of
// http1.FieldOf's): its server said which of those its head had. Nothing adds one of
// those names to the downstream request's map (the tracer adds only its trace context;
// the upstream request's map is a copy, which the authorization chain may add to: ask
// lacks of it only for what is set before that); a field deleted since is only looked up
// for nothing.
func (x *exchange) lacks(f http1.FieldSet) bool { return x.fieldsKnown && x.fields&f == 0 }

// reqValue is the downstream request's first value of the canonical key k, whose
// FieldSet bit is f: "" without a lookup when the head had no such field.
func (x *exchange) reqValue(f http1.FieldSet, k string) string {
	if x.lacks(f) {
		return ""
	}
	return http1.Value(x.r.Header, k)
}

// record begins the record of the downstream request: an Info from infoPool, returned by
// finish once the observers ran.
func (x *exchange) record() *streaminfo.Info {
	f, r, in := x.f, x.r, x.in
	// A zero Info (finish empties each before it goes back): set field by field, as
	// assigning a composite value builds all 768 bytes and copies them in.
	info := infoPool.Get().(*streaminfo.Info)
	info.Start = time.Now()
	info.Method = r.Method
	info.Path = recordedPath(r)
	info.Protocol = protocolName(r)
	info.Authority = r.Host
	info.UserAgent = x.reqValue(http1.FieldUserAgent, "User-Agent")
	info.ForwardedFor = x.reqValue(http1.FieldXForwardedFor, "X-Forwarded-For")
	info.DownstreamLocalAddress, info.DownstreamRemoteAddress = in.LocalAddr, in.RemoteAddr
	info.Direction = in.Direction
	info.UpstreamServiceTime = -1
	if in.Direction == "outbound" {
		info.Source = f.o.Self
	} else {
		info.Destination = f.o.Self
		recordPeer(info, in.Peer) // peer.go: the downstream's certificate
	}
	if r.TLS != nil {
		info.RequestedServerName = r.TLS.ServerName
		info.MTLS = len(r.TLS.PeerCertificates) > 0
	}
	info.MTLS = info.MTLS || in.Peer != nil // a sidecar's inbound mTLS: the proxy verified the peer
	// x-request-id: kept if present, else generated.
	id := x.reqValue(http1.FieldXRequestID, "X-Request-Id")
	if id == "" {
		id = newRequestID()
	}
	info.RequestID = id
	return info
}

// recordedPath is r.URL.RequestURI(): the target as received when it is exactly that
// (the usual case, no string built), else the URL's.
func recordedPath(r *http.Request) string {
	u, raw := r.URL, r.RequestURI
	if raw == "" || u.Opaque != "" || u.ForceQuery {
		return u.RequestURI()
	}
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	q := u.RawQuery
	if q == "" && raw == p ||
		q != "" && len(raw) == len(p)+1+len(q) && strings.HasPrefix(raw, p) && raw[len(p)] == '?' && strings.HasSuffix(raw, q) {
		return raw
	}
	return u.RequestURI()
}

// exchange is the state of one request as it crosses the proxy. Owned by Serve's goroutine.
type exchange struct {
	f    *Forwarder
	w    http.ResponseWriter
	r    *http.Request
	info *streaminfo.Info

	in      Inbound  // the listener's side of the request (a copy in the exchange: no allocation)
	pathURL *url.URL // the URL whose RequestURI is info.Path (prepare.go)

	// What the router decided (decide.go): the virtual host, the route, the weighted
	// cluster drawn (nil for a plain cluster) and the cluster.
	vh *resource.VirtualHost
	rt *resource.Route
	wc *resource.WeightedCluster
	cl *cluster.Cluster

	up   upstreamRequest  // prepare.go: what every attempt sends
	over requestOverrides // retryheaders.go: x-envoy-retry-on, x-envoy-upstream-rq-timeout-ms, ...
	try  attempt          // attempt.go: the current (at the end, the last) attempt

	// Upstream resilience (attempt.go, resilience.go, reused.go, hash.go).
	notRetried notRetried // why the last failure was not retried (for x-lucid-error)
	retrySlots int        // retries this request holds in the cluster's RetriesActive
	setCookie  string     // a generated hash-policy cookie to set on the response

	abort bool // reset the downstream stream after finishing

	// What release (release.go) asks before the exchange is reused (kept together with
	// abort: no padding of their own).
	served      bool // serve returned (it did not panic)
	poolKeepsNo bool // the retry loop's pool keeps nothing of a bodiless request (pool.KeepsNoRequest)
	delivered   bool // respond read the upstream body to its end and sent it all downstream
	mirrored    bool // a mirror request went out (its goroutine runs on)
	envoyFields bool // the downstream request has an x-envoy-* field (prepare's upstreamHeader saw it)
	listed      bool // the upstream request's fields are list's, its map empty (uplist.go)
	fieldsKnown bool // fields says which of http1.FieldOf's names the request has (lacks)
	fields      http1.FieldSet
	nvals       uint8

	// prepare.go (setHeader): the values of fields the proxy sets, nvals of them used;
	// (upstreamHeader) those of the upstream request's fields. Sized with the rest so that
	// the exchange fits a 1,280-byte allocation (TestExchangeSize).
	vals  [8]string
	hvals [11]string

	// The first attempt's context and its first upstream request's URL live in the
	// exchange, the request itself in firstReq (later ones are allocated: each request
	// keeps its own). firstUsed: the first upstream request was made.
	firstCtx  reqctx.Ctx
	firstURL  url.URL
	firstUsed bool

	spans         spans           // tracing.go: the request's spans (none when it is not traced)
	authzDecision *authz.Decision // authz.go: what the chain changes upstream and downstream (nil: no chain)

	// The first upstream request, with firstCtx, and the upstream requests' header map
	// (upstreamHeader): allocated once per exchange object and kept across reuses
	// (release.go).
	firstReq *reqctx.Request
	hdr      http.Header
	list     *upList // uplist.go: the upstream request's fields, when listed
}

// route takes the router's decision: its own reply, or fault injection's, may end the
// request here (false).
func (x *exchange) route(d Decision) bool {
	x.vh, x.rt = d.VirtualHost, d.Route
	if d.Route != nil {
		x.info.RouteName = d.Route.Name
	}
	if d.Reply != nil {
		x.reply(d.Reply)
		return false
	}
	return d.Fault == nil || !x.fault(d.Fault)
}

// target draws the route's cluster (by weight among weighted clusters) and returns its
// connection pool; nil when the request has been answered (503 NC).
func (x *exchange) target() *pool.Pool {
	name, wc := route.PickCluster(x.rt.Action, rand.Uint64N)
	x.wc = wc
	x.info.UpstreamCluster = name
	cl, rp := Target(x.f.o.Clusters, x.rt.Action, name)
	if rp != nil {
		x.reply(rp)
		return nil
	}
	x.cl = cl
	ci := cl.Config().Info
	x.info.DestinationService = ci.ServiceHost
	x.info.DestinationServiceName = ci.ServiceName
	x.info.DestinationServiceNamespace = ci.ServiceNamespace
	var pl *pool.Pool
	if x.f.o.Pools != nil {
		pl = x.f.o.Pools.Get(name)
	}
	if pl != nil {
		pl = pl.From(x.in.OriginalSrc) // origsrc: connections from the client's address
	}
	if pl == nil {
		x.reply(&Reply{Status: http.StatusServiceUnavailable, Flag: streaminfo.NoClusterFound, Details: "cluster_not_found",
			Explanation: "cluster \"" + name + "\" has no connection pool (the proxy has not applied it yet)"})
	}
	return pl
}

// finish hands the record to the observers and returns it to infoPool; then it resets
// the downstream stream when the upstream failed after the response started.
func (x *exchange) finish() {
	info := x.info
	info.Duration = time.Since(info.Start)
	if x.up.body != nil {
		info.BytesReceived = x.up.body.bytesRead()
	}
	info.UpstreamLocalAddress = x.try.localAddress()
	if info.Direction == "outbound" && x.cl != nil && x.try.host != nil { // peer.go: the certificates, whoever the metadata says answered
		x.f.recordUpstream(info, x.try.tls.Load(), x.cl.Config(), &x.try.host.Endpoint)
	}
	x.finishSpan() // tracing.go
	for _, o := range x.f.o.Observers {
		o(info)
	}
	x.recordTelemetryAPI() // telemetryapi.go
	// Observers must not keep the Info (Options.Observers), so it serves the next request.
	x.info = nil
	*info = streaminfo.Info{}
	infoPool.Put(info)
	if x.abort {
		panic(http.ErrAbortHandler)
	}
}

// downstreamGone records that the client went away before a response was sent.
func (x *exchange) downstreamGone() {
	x.info.Flags |= streaminfo.DownstreamConnectionTermination
	if x.info.ResponseCodeDetails == "" {
		x.info.ResponseCodeDetails = "downstream_remote_disconnect"
	}
}

// routeContext is the context of the whole upstream exchange: the downstream request's,
// with the route timeout.
func (x *exchange) routeContext() (context.Context, context.CancelFunc) {
	if t := x.routeTimeoutValue(); t > 0 {
		return context.WithTimeoutCause(x.r.Context(), t, errRouteTimeout)
	}
	// No route timeout: the downstream request's own context, which net/http cancels when
	// the handler returns (a child context here would only add allocations per request).
	return x.r.Context(), func() {}
}
