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
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/cluster"
	"github.com/lucid-mesh/lucid/internal/dataplane/pool"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/route"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// Options configure a Forwarder.
type Options struct {
	Clusters *cluster.Manager
	Pools    *pool.Set
	// Observers (access log, stats) are called once per request after it ends, in order,
	// never concurrently for the same Info; they must not keep the Info.
	Observers []func(*streaminfo.Info)
	Self      streaminfo.Peer // this workload, for metrics labels
	// ConnectionObservers get one Info per opaque TCP connection (tcp_proxy), as Istio's
	// access log has one line per TCP connection (empty method). See ServeTCP.
	ConnectionObservers []func(*streaminfo.Info)
	// ConnectionMetrics counts an opaque TCP connection opened and returns its counters
	// (Istio's istio_tcp_* metrics: stats.TCPOpened); nil: not counted. See ServeTCP.
	ConnectionMetrics func(*streaminfo.Info) ConnectionCounter
	Logger            *slog.Logger // the "router" logger
}

// Forwarder serves matched requests. It is safe for concurrent use.
type Forwarder struct {
	o       Options
	log     *slog.Logger
	mirrors sync.WaitGroup // fire-and-forget mirror requests still running
}

// New returns a Forwarder.
func New(o Options) *Forwarder {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Forwarder{o: o, log: log}
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
}

// infoPool recycles the per-request records (about 600 bytes each).
var infoPool = sync.Pool{New: func() any { return new(streaminfo.Info) }}

// Errors used as context causes, to tell the route timeout from a per-try timeout.
var (
	errRouteTimeout  = errors.New("route timeout")
	errPerTryTimeout = errors.New("per-try timeout")
)

// Serve handles one downstream HTTP request end to end (HTTP/1.1 and HTTP/2 downstream).
//
// When the upstream fails after the response started, Serve resets the downstream stream
// by panicking with http.ErrAbortHandler, as net/http/httputil.ReverseProxy does; the
// observers have been called by then.
func (f *Forwarder) Serve(w http.ResponseWriter, r *http.Request, in Inbound) {
	x := &exchange{f: f, w: w, r: r, in: &in, info: f.record(r, &in)}
	defer x.finish()
	x.serve()
}

// record begins the record of a downstream request: an Info from infoPool, returned by
// finish once the observers ran.
func (f *Forwarder) record(r *http.Request, in *Inbound) *streaminfo.Info {
	info := infoPool.Get().(*streaminfo.Info)
	*info = streaminfo.Info{
		Start:                   time.Now(),
		Method:                  r.Method,
		Path:                    r.URL.RequestURI(),
		Protocol:                protocolName(r),
		Authority:               r.Host,
		UserAgent:               r.Header.Get("User-Agent"),
		ForwardedFor:            r.Header.Get("X-Forwarded-For"),
		DownstreamLocalAddress:  in.LocalAddr,
		DownstreamRemoteAddress: in.RemoteAddr,
		Direction:               in.Direction,
		UpstreamServiceTime:     -1,
	}
	if in.Direction == "outbound" {
		info.Source = f.o.Self
	} else {
		info.Destination = f.o.Self
	}
	if r.TLS != nil {
		info.RequestedServerName = r.TLS.ServerName
	}
	// x-request-id: kept if present, else generated.
	id := r.Header.Get("X-Request-Id")
	if id == "" {
		id = newRequestID()
	}
	info.RequestID = id
	return info
}

// exchange is the state of one request as it crosses the proxy. Owned by Serve's goroutine.
type exchange struct {
	f    *Forwarder
	w    http.ResponseWriter
	r    *http.Request
	in   *Inbound
	info *streaminfo.Info

	vh   *resource.VirtualHost
	rt   *resource.Route
	wc   *resource.WeightedCluster
	cl   *cluster.Cluster
	body *replayBody
	out  http.Header // upstream request headers (after hop-by-hop removal and header ops)
	host string      // upstream Host header

	path *url.URL // upstream path and query

	retryExhausted bool                   // a retry was wanted but the budget was spent
	bodyNotKept    bool                   // a retry was wanted but the body could not be replayed
	upstreamLocal  atomic.Pointer[string] // local address of the last upstream connection (upgrade.go)
	upMu           sync.Mutex             // guards upAddr (UpstreamConn runs on transport goroutines)
	upAddr         net.Addr               // local address of the last upstream connection
	abort          bool                   // reset the downstream stream after finishing

	// Upstream resilience (resilience.go, reused.go, hash.go).
	retryOverflow    string // a retry was refused by max_retries or the retry budget
	retrySlots       int    // retries this request holds in the cluster's RetriesActive
	reusedNotRetried string // why a request that failed on a reused connection was not sent again
	setCookie        string // a generated hash-policy cookie to set on the response

	over requestOverrides // retryheaders.go: x-envoy-retry-on, x-envoy-upstream-rq-timeout-ms, ...

	upHost *cluster.Host           // the attempt's host (stream.go: drained when it leaves)
	cut    context.CancelCauseFunc // cancels the attempt's context (stream.go)
}

func (x *exchange) finish() {
	info := x.info
	info.Duration = time.Since(info.Start)
	if x.body != nil {
		info.BytesReceived = x.body.bytesRead()
	}
	info.UpstreamLocalAddress = x.upstreamLocalAddress()
	for _, o := range x.f.o.Observers {
		o(info)
	}
	// Observers must not keep the Info (Options.Observers), so it serves the next request.
	x.info = nil
	*info = streaminfo.Info{}
	infoPool.Put(info)
	if x.abort {
		panic(http.ErrAbortHandler)
	}
}

func (x *exchange) serve() {
	d := Decide(x.in, x.r) // decide.go: route configuration, virtual host, route, the route's own answer
	x.vh, x.rt = d.VirtualHost, d.Route
	if d.Route != nil {
		x.info.RouteName = d.Route.Name
	}
	if d.Reply != nil {
		x.reply(d.Reply)
		return
	}
	if d.Fault != nil && x.fault(d.Fault) {
		return
	}

	name, wc := route.PickCluster(x.rt.Action, rand.Uint64N)
	x.wc = wc
	x.info.UpstreamCluster = name
	cl, rp := Target(x.f.o.Clusters, x.rt.Action, name)
	if rp != nil {
		x.reply(rp)
		return
	}
	x.cl = cl
	x.fillDestination()
	var pl *pool.Pool
	if x.f.o.Pools != nil {
		pl = x.f.o.Pools.Get(name)
	}
	if pl == nil {
		x.localReply(http.StatusServiceUnavailable, streaminfo.NoClusterFound, "cluster_not_found", "",
			"cluster \""+name+"\" has no connection pool (the proxy has not applied it yet)")
		return
	}

	x.prepareRequest(x.info.RequestID)
	if x.upgrade() { // upgrade.go: WebSocket and other HTTP/1.1 upgrades
		return
	}
	x.forward(pl)
	x.sendMirrors()
}

// fillDestination records the destination service and (outbound) peer from the cluster.
func (x *exchange) fillDestination() {
	ci := x.cl.Config().Info
	x.info.DestinationService = ci.ServiceHost
	x.info.DestinationServiceName = ci.ServiceName
	x.info.DestinationServiceNamespace = ci.ServiceNamespace
}

// fault applies fault injection: delay, then abort. It reports whether the request ended.
func (x *exchange) fault(ft *resource.Fault) bool {
	if ft.Delay > 0 && hit(ft.DelayPercent) {
		x.info.Flags |= streaminfo.DelayInjected
		t := time.NewTimer(ft.Delay)
		select {
		case <-t.C:
		case <-x.r.Context().Done():
			t.Stop()
			x.downstreamGone()
			return true
		}
	}
	if (ft.AbortStatus > 0 || ft.AbortGRPC >= 0) && hit(ft.AbortPercent) {
		if ft.AbortStatus == 0 && ft.AbortGRPC >= 0 {
			// gRPC abort: a trailers-only response with HTTP 200.
			h := x.w.Header()
			h.Set("Content-Type", "application/grpc")
			h.Set("Grpc-Status", itoa(ft.AbortGRPC))
			h.Set("Grpc-Message", "fault filter abort")
			x.localReply(http.StatusOK, streaminfo.FaultInjected, "fault_filter_abort", "",
				"fault injection aborted the request with grpc-status "+itoa(ft.AbortGRPC)+" (route \""+x.rt.Name+"\")")
			return true
		}
		x.localReply(ft.AbortStatus, streaminfo.FaultInjected, "fault_filter_abort", "fault filter abort",
			"fault injection aborted the request with "+itoa(ft.AbortStatus)+" (route \""+x.rt.Name+"\")")
		return true
	}
	return false
}

// hit draws a percentage.
func hit(percent float64) bool {
	if percent >= 100 {
		return true
	}
	return percent > 0 && rand.Float64()*100 < percent
}

// downstreamGone records that the client went away before a response was sent.
func (x *exchange) downstreamGone() {
	x.info.Flags |= streaminfo.DownstreamConnectionTermination
	if x.info.ResponseCodeDetails == "" {
		x.info.ResponseCodeDetails = "downstream_remote_disconnect"
	}
}

// context for the whole upstream exchange: the downstream request's, with the route timeout.
func (x *exchange) routeContext() (context.Context, context.CancelFunc) {
	if t := x.routeTimeoutValue(); t > 0 {
		return context.WithTimeoutCause(x.r.Context(), t, errRouteTimeout)
	}
	// No route timeout: the downstream request's own context, which net/http cancels when
	// the handler returns (a child context here would only add allocations per request).
	return x.r.Context(), func() {}
}
