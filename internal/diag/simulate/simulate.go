package simulate

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/lucid-mesh/lucid/internal/dataplane/cluster"
	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/pool"
	"github.com/lucid-mesh/lucid/internal/dataplane/proxy"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/route"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// HostState is what the sidecar's /clusters says about one host at run time.
type HostState struct {
	Flags []string // Envoy health flags that are set, e.g. "/failed_outlier_check"
	// Idle is the host's keep-alive idle timeout as the pool knows it (keepalive.go).
	Idle *pool.IdleInfo
}

// Env is a proxy's configuration ready for simulation.
type Env struct {
	Snap     *resource.Snapshot
	clusters *cluster.Manager
	// Health holds run-time host state by cluster name and host address ("ip:port");
	// nil when unknown.
	Health map[string]map[string]HostState
}

// New builds the cluster manager the proxy would build from snap.
func New(snap *resource.Snapshot, health map[string]map[string]HostState) *Env {
	m := cluster.NewManager(nil)
	m.Update(snap.Clusters, snap.Endpoints)
	return &Env{Snap: snap, clusters: m, Health: health}
}

// NoHostReason returns why the named cluster has no host to pick, in the proxy's words
// (the explanation of its 503 UH), and false when it has one or is not a cluster with a
// fixed host set (ORIGINAL_DST).
func (e *Env) NoHostReason(name string) (string, bool) {
	c := e.clusters.Get(name)
	if c == nil || c.Config().Type == resource.OriginalDst {
		return "", false
	}
	_, err := c.Pick(cluster.PickContext{})
	var nh *cluster.NoHealthyError
	if errors.As(err, &nh) {
		return nh.Explanation, true
	}
	return "", false
}

// Trace is the path of one request through the proxy.
type Trace struct {
	Method string `json:"method"`
	URL    string `json:"url"`

	Listener     string `json:"listener"`      // listener name ("" when none)
	ListenerNote string `json:"listener_note"` // how the listener was chosen
	// Connection and FilterChain are a gateway's: what the client's connection looks
	// like to the listener (TLS, SNI, ALPN) and the filter chain chosen for it.
	Connection      string         `json:"connection,omitempty"`
	FilterChain     string         `json:"filter_chain,omitempty"`
	TLS             string         `json:"tls,omitempty"` // how the chain terminates TLS ("" when it does not)
	RouteConfig     string         `json:"route_config"`  // route configuration name
	VirtualHost     string         `json:"virtual_host"`  // "" when none matched
	Routes          []RouteVerdict `json:"routes"`
	Route           string         `json:"route,omitempty"`           // the route that matched ("" when none)
	VirtualService  string         `json:"virtual_service,omitempty"` // "name.namespace" of the VirtualService that wrote the route
	Candidates      []Candidate    `json:"candidates,omitempty"`
	Outcome         Outcome        `json:"outcome"`
	UnmatchedDomain bool           `json:"unmatched_domain,omitempty"` // no virtual host matched the authority
}

// RouteVerdict is one route of the virtual host and why it did or did not match.
type RouteVerdict struct {
	Name    string `json:"name"`
	Match   string `json:"match"` // the path match, istioctl style
	Matched bool   `json:"matched"`
	Reason  string `json:"reason"`
}

// Candidate is one cluster the route can send to, with its endpoints and what would
// happen if the request went there.
type Candidate struct {
	Cluster   string               `json:"cluster"`
	Weight    uint32               `json:"weight,omitempty"` // 0 for a plain cluster
	Percent   float64              `json:"percent"`
	Info      resource.ClusterInfo `json:"info"`
	Type      string               `json:"type,omitempty"`
	Exists    bool                 `json:"exists"`
	Endpoints []EndpointState      `json:"endpoints"`
	Outcome   Outcome              `json:"outcome"`
}

// EndpointState is one endpoint of a candidate cluster.
type EndpointState struct {
	Address string            `json:"address"`
	Health  string            `json:"health"`            // EDS health: HEALTHY, UNHEALTHY, ... (UNKNOWN counts as healthy)
	Labels  map[string]string `json:"labels,omitempty"`  // from the endpoint's lucid metadata
	Usable  bool              `json:"usable"`            // the load balancer may pick it
	Ejected []string          `json:"ejected,omitempty"` // run-time health flags (outlier detection, ...)
}

// Outcome is what the proxy does with the request: forward it to an endpoint, or answer
// it itself.
type Outcome struct {
	Status     int    `json:"status,omitempty"`
	Flag       string `json:"flag,omitempty"` // "" when forwarded
	Body       string `json:"body,omitempty"`
	LucidError string `json:"x_lucid_error,omitempty"` // the x-lucid-error value ("" when forwarded or configured)
	Endpoint   string `json:"endpoint,omitempty"`      // the endpoint it would pick
	Note       string `json:"note,omitempty"`          // redirect target, direct response, fault injection, ...
	// Closed says why the connection ends without an HTTP response (a gateway's listener:
	// no listener on the port, no filter chain, a failed TLS handshake, a TCP chain with
	// no upstream); Status is then 0.
	Closed string `json:"connection_closed,omitempty"`
	// Counter is the proxy statistic the failure increments, when it is not in the access
	// log (listener.<name>.ssl.connection_error, ...).
	Counter string `json:"counter,omitempty"`
	// Split holds each reachable cluster's outcome of a weighted split ("80%: forwarded to
	// ..."); the other fields are then empty.
	Split []string `json:"split,omitempty"`
}

// Forwarded reports whether the request would reach an upstream endpoint.
func (o Outcome) Forwarded() bool { return o.Endpoint != "" }

// Why simulates r arriving at the workload's outbound proxy (:15001), as the sidecar runs
// it: the listener for the destination port (Istio's 0.0.0.0_<port>, handed over as
// original_dst would), else virtualOutbound's default chain.
func (e *Env) Why(r *http.Request) *Trace {
	t := &Trace{Method: r.Method, URL: r.URL.String()}
	host, port := proxy.Destination(r)
	dst := net.JoinHostPort(host, strconv.Itoa(int(port)))

	l := e.outboundListener(port)
	var rc *resource.RouteConfig
	switch {
	case l != nil:
		t.Listener = l.Name
		fc := proxy.ChainFor(l, uint32(port))
		if fc == nil || fc.HTTP == nil {
			t.ListenerNote = fmt.Sprintf("outbound listener for port %d has no HTTP filter chain", port)
			t.Outcome = e.localReply(http.StatusNotFound, streaminfo.NoRouteFound, "", "route configuration \"(none)\" has not arrived from the control plane yet")
			return t
		}
		t.ListenerNote = fmt.Sprintf("outbound listener for port %d", port)
		if fc.HTTP.Routes != nil {
			rc, t.RouteConfig = fc.HTTP.Routes, fc.HTTP.Routes.Name
		} else {
			rc, t.RouteConfig = e.Snap.Routes[fc.HTTP.RDSName], fc.HTTP.RDSName
		}
	default:
		vo := e.virtualOutbound()
		name := "virtualOutbound"
		if vo != nil {
			name = vo.Name
		}
		t.Listener = name
		t.ListenerNote = fmt.Sprintf("no outbound listener for port %d: the default chain of %s", port, name)
		t.RouteConfig = "(default chain of " + name + ")"
		rc = proxy.PassthroughRoutes(vo, dst)
	}
	e.routeRequest(t, r, rc, dst, "http")
	return t
}

// routeRequest runs r through the route configuration rc a chain chose (t.RouteConfig
// names it): virtual host, route, then the route's action. scheme is the request's
// ("https" when TLS was terminated), as redirects see it.
func (e *Env) routeRequest(t *Trace, r *http.Request, rc *resource.RouteConfig, dst, scheme string) {
	if rc == nil {
		t.Outcome = e.localReply(http.StatusNotFound, streaminfo.NoRouteFound, "",
			"route configuration \""+t.RouteConfig+"\" has not arrived from the control plane yet")
		return
	}

	vh, rt := route.Select(rc, r)
	if vh != nil {
		t.VirtualHost = vh.Name
		for i, v := range route.Explain(vh, r) {
			name := v.Route.Name
			if name == "" {
				name = "#" + strconv.Itoa(i+1)
			}
			t.Routes = append(t.Routes, RouteVerdict{Name: name, Match: describeMatch(&v.Route.Match), Matched: v.Matched, Reason: v.Reason})
		}
	} else {
		t.UnmatchedDomain = true
	}
	if rt == nil {
		t.Outcome = e.localReply(http.StatusNotFound, streaminfo.NoRouteFound, "", route.NoRouteExplanation(rc, vh, r))
		return
	}
	t.Route = rt.Name
	if rt.VirtualService != "" {
		t.VirtualService = configName(rt.VirtualService)
	}
	switch {
	case rt.Redirect != nil:
		code := rt.Redirect.Code
		if code == 0 {
			code = http.StatusMovedPermanently
		}
		loc := route.RedirectLocation(&rt.Match, rt.Redirect, r, scheme)
		t.Outcome = Outcome{Status: code, Note: "redirect to " + loc + " (configured by the route; no x-lucid-error)"}
		return
	case rt.DirectResponse != nil:
		t.Outcome = Outcome{Status: rt.DirectResponse.Status, Body: rt.DirectResponse.Body, Note: "direct response configured by the route (no x-lucid-error)"}
		return
	case rt.Action == nil:
		t.Outcome = e.localReply(http.StatusNotFound, streaminfo.NoRouteFound, "", "route \""+rt.Name+"\" has no action")
		return
	}
	if f := rt.Fault; f != nil {
		t.Outcome.Note = describeFault(f)
	}
	t.Candidates = e.candidates(rt.Action, dst, r)
	t.Outcome = e.summarize(t.Candidates, rt.Action, t.Outcome.Note)
}

func (e *Env) candidates(a *resource.RouteAction, dst string, r *http.Request) []Candidate {
	code := a.ClusterNotFoundCode
	if code == 0 {
		code = http.StatusServiceUnavailable
	}
	if len(a.WeightedClusters) == 0 {
		return []Candidate{e.candidate(a.Cluster, 0, 100, code, dst, r)}
	}
	var total uint64
	for _, wc := range a.WeightedClusters {
		total += uint64(wc.Weight)
	}
	var out []Candidate
	for _, wc := range a.WeightedClusters {
		pct := 0.0
		if total > 0 {
			pct = float64(wc.Weight) * 100 / float64(total)
		}
		out = append(out, e.candidate(wc.Name, wc.Weight, pct, code, dst, r))
	}
	return out
}

func (e *Env) candidate(name string, weight uint32, pct float64, ncCode int, dst string, r *http.Request) Candidate {
	c := Candidate{Cluster: name, Weight: weight, Percent: pct}
	cl := e.clusters.Get(name)
	if name == "" || cl == nil {
		c.Outcome = e.localReply(ncCode, streaminfo.NoClusterFound, "", forward.NoClusterExplanation(name))
		return c
	}
	cfg := cl.Config()
	c.Exists, c.Info, c.Type = true, cfg.Info, typeName(cfg.Type)
	for _, h := range cl.Hosts() {
		es := EndpointState{Address: h.Addr, Health: h.Endpoint.Health.String(), Labels: h.Endpoint.Labels,
			Usable: h.Endpoint.Usable() && h.Endpoint.Weight > 0}
		if hs, ok := e.Health[name][h.Addr]; ok {
			for _, f := range hs.Flags {
				if f != "/failed_eds_health" && f != "/degraded_eds_health" && f != "/eds_status_draining" {
					es.Ejected = append(es.Ejected, f)
				}
			}
		}
		c.Endpoints = append(c.Endpoints, es)
	}
	orig := dst
	if cfg.UseHTTPHeader {
		if h := r.Header.Get("X-Envoy-Original-Dst-Host"); h != "" {
			orig = h
		}
	}
	h, err := cl.Pick(cluster.PickContext{OriginalDst: orig})
	if err != nil {
		explain := err.Error()
		var nh *cluster.NoHealthyError
		if errors.As(err, &nh) {
			explain = nh.Explanation
		}
		c.Outcome = e.localReply(http.StatusServiceUnavailable, streaminfo.NoHealthyUpstream, "no healthy upstream", explain)
		return c
	}
	var usable []string
	for _, es := range c.Endpoints {
		if es.Usable {
			usable = append(usable, es.Address)
		}
	}
	c.Outcome = Outcome{Endpoint: h.Addr, Note: e.keepaliveNote(r, cl, h.Addr)}
	if len(usable) > 1 {
		// The pick depends on load; name the set, not one draw.
		c.Outcome.Endpoint = fmt.Sprintf("one of %s (%s)", strings.Join(usable, ", "), lbName(cfg.LBPolicy))
	}
	return c
}

// summarize turns the candidates into the request's outcome: the only candidate's, or,
// for a weighted split, the outcome of the candidates the weights can reach (one line when
// they agree).
func (e *Env) summarize(cs []Candidate, a *resource.RouteAction, note string) Outcome {
	var reach []Candidate
	for _, c := range cs {
		if len(a.WeightedClusters) == 0 || c.Weight > 0 {
			reach = append(reach, c)
		}
	}
	if len(reach) == 0 {
		o := e.localReply(http.StatusServiceUnavailable, streaminfo.NoClusterFound, "", forward.NoClusterExplanation(""))
		o.Note = note
		return o
	}
	o := reach[0].Outcome
	if len(reach) > 1 {
		o = Outcome{Note: note}
		for _, c := range reach {
			o.Split = append(o.Split, fmt.Sprintf("%.0f%%: %s", c.Percent, c.Outcome.Short()))
		}
		return o
	}
	o.Note = joinNote(o.Note, note)
	return o
}

func joinNote(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}

// Short is a one-line summary of an outcome.
func (o Outcome) Short() string {
	if len(o.Split) > 0 {
		return "weighted split: " + strings.Join(o.Split, "; ")
	}
	if o.Forwarded() {
		return "forwarded to " + o.Endpoint
	}
	if o.Closed != "" {
		return "connection closed"
	}
	if o.Flag != "" {
		return fmt.Sprintf("%d %s", o.Status, o.Flag)
	}
	return strconv.Itoa(o.Status)
}

// localReply is what forward answers for flag, with forward's own x-lucid-error rendering.
func (e *Env) localReply(code int, flag streaminfo.Flag, body, explanation string) Outcome {
	return Outcome{Status: code, Flag: flag.String(), Body: body, LucidError: forward.LucidError(flag, explanation)}
}

func (e *Env) outboundListener(port uint16) *resource.Listener {
	names := make([]string, 0, len(e.Snap.Listeners))
	for n := range e.Snap.Listeners {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		l := e.Snap.Listeners[n]
		if !l.BindToPort && l.Direction != resource.Inbound && l.Address.Port() == port {
			return l
		}
	}
	return nil
}

func (e *Env) virtualOutbound() *resource.Listener {
	for _, l := range e.Snap.Listeners {
		if l.UseOriginalDst && l.Direction != resource.Inbound && l.BindToPort {
			return l
		}
	}
	return nil
}

func lbName(p resource.LBPolicy) string {
	return [...]string{"LEAST_REQUEST", "ROUND_ROBIN", "RANDOM", "RING_HASH", "MAGLEV"}[p]
}

func typeName(t resource.DiscoveryType) string {
	return [...]string{"EDS", "STATIC", "ORIGINAL_DST", "STRICT_DNS", "LOGICAL_DNS"}[t]
}

func describeFault(f *resource.Fault) string {
	var parts []string
	if f.Delay > 0 {
		parts = append(parts, fmt.Sprintf("fault injection delays %.0f%% of requests by %s", f.DelayPercent, f.Delay))
	}
	if f.AbortStatus > 0 {
		parts = append(parts, fmt.Sprintf("fault injection aborts %.0f%% of requests with %d (FI)", f.AbortPercent, f.AbortStatus))
	}
	return strings.Join(parts, "; ")
}

func describeMatch(m *resource.RouteMatch) string {
	s := ""
	switch m.PathKind {
	case resource.PathPrefix:
		s = "prefix " + strconv.Quote(m.Path)
	case resource.PathExact:
		s = "path " + strconv.Quote(m.Path)
	case resource.PathRegex:
		if m.Regex != nil {
			s = "regex " + strconv.Quote(m.Regex.String())
		}
	case resource.PathSeparated:
		s = "path_separated_prefix " + strconv.Quote(m.Path)
	}
	for _, h := range m.Headers {
		s += ", header " + strconv.Quote(h.Name)
	}
	for _, q := range m.QueryParams {
		s += ", query " + strconv.Quote(q.Name)
	}
	return s
}

func configName(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i := 0; i+3 < len(parts); i++ {
		if parts[i] == "namespaces" {
			return parts[i+3] + "." + parts[i+1]
		}
	}
	return path
}
