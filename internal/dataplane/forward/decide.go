package forward

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/lucid-mesh/lucid/internal/dataplane/cluster"
	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/route"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// The router's and the tcp_proxy's decisions before any upstream is contacted, as values:
// the route configuration, virtual host and route a request gets and the route's own
// answer (Decide), the cluster a route names (Target), its first host (PickHost), and
// the same for an opaque connection (TCPUpstream). They read the configuration and the
// clusters' current state and change nothing. The proxy executes them (Serve, ServeTCP);
// `lucid why` (internal/diag/simulate) renders them, so the explanation it prints is the
// one the proxy sends, word for word, by construction.

// Reply is an answer the proxy makes itself instead of forwarding: a local reply for a
// failure (Flag set: Envoy's status, body and details, and Lucid's explanation), or a
// configured one (a route's redirect or direct response: no flag, no x-lucid-error).
type Reply struct {
	Status      int
	Flag        streaminfo.Flag // 0 for a configured reply
	Details     string          // %RESPONSE_CODE_DETAILS%
	Body        string
	Explanation string // x-lucid-error after "FLAGS: " ("" for a configured reply)
	Location    string // a redirect's target ("" otherwise)
}

// LucidError is the x-lucid-error of the reply when no other flag is set ("" for a
// configured reply).
func (rp *Reply) LucidError() string {
	if rp.Flag == 0 {
		return ""
	}
	return LucidError(rp.Flag, rp.Explanation)
}

// Decision is what the router does with a request before it picks a cluster.
type Decision struct {
	VirtualHost *resource.VirtualHost // nil when none matches the authority
	Route       *resource.Route       // nil when none matches
	// Reply is the proxy's own answer (no route configuration or route, a redirect, a
	// direct response, a route without action); nil: the request goes on to Fault, then
	// to the cluster the route's action picks (Target).
	Reply *Reply
	// Fault is the route's fault injection when the connection manager runs the fault
	// filter (nil otherwise); it is drawn per request (delay, then abort).
	Fault *resource.Fault
}

// Decide is the router's decision for r arriving on in: the route configuration (404 NR
// when it has not arrived), the virtual host and the route (404 NR with why none
// matches), then the route's own answer: a redirect (r.TLS tells the scheme it sees), a
// direct response, or 404 NR for a route without action.
func Decide(in *Inbound, r *http.Request) Decision {
	if in.Routes == nil || in.Routes.Config() == nil {
		return Decision{Reply: &Reply{Status: http.StatusNotFound, Flag: streaminfo.NoRouteFound, Details: "route_not_found",
			Explanation: "route configuration \"" + in.RouteConfigName + "\" has not arrived from the control plane yet"}}
	}
	vh, rt := in.Routes.Select(r)
	d := Decision{VirtualHost: vh, Route: rt}
	switch {
	case rt == nil:
		d.Reply = &Reply{Status: http.StatusNotFound, Flag: streaminfo.NoRouteFound, Details: "route_not_found",
			Explanation: route.NoRouteExplanation(in.Routes.Config(), vh, r)}
	case rt.Redirect != nil:
		code := rt.Redirect.Code
		if code == 0 {
			code = http.StatusMovedPermanently
		}
		d.Reply = &Reply{Status: code, Details: "direct_response",
			Location: route.RedirectLocation(&rt.Match, rt.Redirect, r, requestScheme(r))}
	case rt.DirectResponse != nil:
		d.Reply = &Reply{Status: rt.DirectResponse.Status, Details: "direct_response", Body: rt.DirectResponse.Body}
		explainBlockAll(d.Reply, rt, r) // capture.go: REGISTRY_ONLY's block_all says why
	case rt.Action == nil:
		d.Reply = &Reply{Status: http.StatusNotFound, Flag: streaminfo.NoRouteFound, Details: "route_not_found",
			Explanation: "route \"" + rt.Name + "\" has no action"}
	case rt.Fault != nil && (in.HTTP == nil || in.HTTP.FaultFilter):
		d.Fault = rt.Fault
	}
	return d
}

// Target is the cluster named (the route action a's cluster, or the weighted cluster
// route.PickCluster drew; "" when every weight is 0), or 503 NC (the action's
// cluster_not_found_response_code) with why it does not exist.
func Target(m *cluster.Manager, a *resource.RouteAction, name string) (*cluster.Cluster, *Reply) {
	var cl *cluster.Cluster
	if name != "" && m != nil {
		cl = m.Get(name)
	}
	if cl != nil {
		return cl, nil
	}
	code := a.ClusterNotFoundCode
	if code == 0 {
		code = http.StatusServiceUnavailable
	}
	return nil, noCluster(code, name)
}

// PickHost picks cl's host for a request without the per-attempt state of the retry loop
// (an upgrade's single attempt), or gives the 503 UH with why there is none. originalDst
// is where the request was addressed (ORIGINAL_DST clusters).
func PickHost(cl *cluster.Cluster, r *http.Request, originalDst string) (*cluster.Host, *Reply) {
	h, err := cl.Pick(cluster.PickContext{OriginalDst: originalDestination(cl, r, originalDst)})
	if err != nil {
		return nil, noHealthy(err)
	}
	return h, nil
}

// TCPUpstream is the tcp_proxy's decision for a connection to cluster name: the cluster
// and its host, or the reply (NC, UO at the cluster's max_connections, UH). A tcp_proxy
// has no response to send: the connection is closed and the reply's flag and
// explanation go to the access log. cl is set when the cluster exists.
func TCPUpstream(m *cluster.Manager, name, originalDst string) (cl *cluster.Cluster, h *cluster.Host, rp *Reply) {
	if cl = m.Get(name); cl == nil {
		return nil, nil, noCluster(0, name)
	}
	if lim := connectionBound(cl.Config().MaxConnections); cl.Stats().UpstreamCxActive.Load() >= lim { // loop.go
		return cl, nil, tcpOverflow(cl, lim)
	}
	h, err := cl.Pick(cluster.PickContext{OriginalDst: originalDst})
	if err != nil {
		rp = noHealthy(err)
		rp.Status, rp.Body = 0, ""
		return cl, nil, rp
	}
	return cl, h, nil
}

// reserveTCPConnection takes one of cl's max_connections for a tcp_proxy connection before
// it dials, so two connections arriving together cannot both pass the bound while neither
// has connected yet; it gives the UO reply when none is left. A nil reply must be paired
// with a cl.Stats().UpstreamCxActive.Add(-1) when the connection ends or its dial fails.
func reserveTCPConnection(cl *cluster.Cluster) *Reply {
	lim := connectionBound(cl.Config().MaxConnections) // loop.go
	if cl.Stats().UpstreamCxActive.Add(1) > lim {
		cl.Stats().UpstreamCxActive.Add(-1)
		return tcpOverflow(cl, lim)
	}
	return nil
}

// tcpOverflow is the UO reply for a tcp_proxy connection over cl's max_connections lim.
func tcpOverflow(cl *cluster.Cluster, lim int64) *Reply {
	why := " connections (circuit breaker max_connections)"
	if lim == defaultMaxConnections && int64(cl.Config().MaxConnections) != defaultMaxConnections {
		why = " connections (Envoy's default max_connections; the DestinationRule sets no connectionPool.tcp.maxConnections)"
	}
	return &Reply{Flag: streaminfo.UpstreamOverflow, Details: "upstream_cx_overflow",
		Explanation: "cluster " + cl.Config().Name + " already has its maximum of " + strconv.FormatInt(lim, 10) + why}
}

// noCluster is the NC reply for a cluster name that does not exist (status 0 for a
// tcp_proxy, which has no response).
func noCluster(code int, name string) *Reply {
	return &Reply{Status: code, Flag: streaminfo.NoClusterFound, Details: "cluster_not_found", Explanation: explainNoCluster(name)}
}

// noHealthy is the UH reply for a failed pick.
func noHealthy(err error) *Reply {
	var nh *cluster.NoHealthyError
	explain := err.Error()
	if errors.As(err, &nh) {
		explain = nh.Explanation
	}
	return &Reply{Status: http.StatusServiceUnavailable, Flag: streaminfo.NoHealthyUpstream, Details: "no_healthy_upstream",
		Body: "no healthy upstream", Explanation: explain}
}

// originalDestination is the destination of an ORIGINAL_DST cluster: the
// x-envoy-original-dst-host header when the cluster uses it, else where the request was
// addressed.
func originalDestination(cl *cluster.Cluster, r *http.Request, addressed string) string {
	if cl.Config().UseHTTPHeader {
		if h := http1.Value(r.Header, "X-Envoy-Original-Dst-Host"); h != "" {
			return h
		}
	}
	return addressed
}

// explainNoCluster says why a cluster does not exist, reading Istio's cluster name
// "direction|port|subset|host".
func explainNoCluster(name string) string {
	if name == "" {
		return "the route selects no cluster (every weight is 0)"
	}
	q := strconv.Quote(name)
	parts := strings.Split(name, "|")
	if len(parts) == 4 && (parts[0] == "outbound" || parts[0] == "inbound") {
		port, subset, host := parts[1], parts[2], parts[3]
		if subset != "" {
			return "cluster " + q + " not found: no DestinationRule defines subset " + strconv.Quote(subset) + " for " + host
		}
		return "cluster " + q + " not found: no service " + host + " with port " + port + " is known to this proxy"
	}
	return "cluster " + q + " not found"
}

// requestScheme is the scheme the downstream used.
func requestScheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}
