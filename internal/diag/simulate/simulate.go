package simulate

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/lucid-mesh/lucid/internal/dataplane/cluster"
	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/pool"
	"github.com/lucid-mesh/lucid/internal/dataplane/proxy"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/route"
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
	// Principal is the client's mTLS identity for authorization ("cluster.local/ns/x/sa/y";
	// "" for a plaintext client), authz.go.
	Principal string
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

	// Path is the normalised path when normalisation changed it, Authz the authorization
	// filters' decision (authz.go).
	Path  string `json:"path,omitempty"`
	Authz string `json:"authorization,omitempty"`
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

	l := proxy.OutboundListeners(e.Snap)[port]
	in := &forward.Inbound{OriginalDst: dst}
	switch {
	case l != nil:
		t.Listener = l.Name
		fc := proxy.ChainFor(l, uint32(port))
		if fc == nil || fc.HTTP == nil {
			t.ListenerNote = fmt.Sprintf("outbound listener for port %d has no HTTP filter chain", port)
			in.RouteConfigName = "(none)" // as the proxy hands it to forward
			e.routeRequest(t, r, in)
			return t
		}
		t.ListenerNote = fmt.Sprintf("outbound listener for port %d", port)
		rc, name := proxy.RouteConfigOf(e.Snap, fc.HTTP)
		in.HTTP, in.Routes, t.RouteConfig = fc.HTTP, compile(rc), name
	default:
		vo := e.virtualOutbound()
		name := "virtualOutbound"
		if vo != nil {
			name = vo.Name
		}
		t.Listener = name
		t.ListenerNote = fmt.Sprintf("no outbound listener for port %d: the default chain of %s", port, name)
		t.RouteConfig = "(default chain of " + name + ")"
		in.Routes = compile(proxy.PassthroughRoutes(vo, dst))
	}
	in.RouteConfigName = t.RouteConfig
	e.routeRequest(t, r, in)
	return t
}

// compile indexes rc as the proxy does when it applies a configuration (nil stays nil:
// the configuration has not arrived).
func compile(rc *resource.RouteConfig) *route.Table {
	if rc == nil {
		return nil
	}
	return route.Compile(rc)
}

// routeRequest runs r through the router's own decision (forward.Decide) on what the
// chain handed over, and renders it: the virtual host with each route's verdict, the
// route, then the proxy's own answer, or the clusters the route's action can pick
// (forward.Target) with the host each would get (forward.PickHost).
func (e *Env) routeRequest(t *Trace, r *http.Request, in *forward.Inbound) {
	d := forward.Decide(in, r)
	switch vh := d.VirtualHost; {
	case vh != nil:
		t.VirtualHost = vh.Name
		for i, v := range route.Explain(vh, r) {
			name := v.Route.Name
			if name == "" {
				name = "#" + strconv.Itoa(i+1)
			}
			t.Routes = append(t.Routes, RouteVerdict{Name: name, Match: describeMatch(&v.Route.Match), Matched: v.Matched, Reason: v.Reason})
		}
	case in.Routes != nil:
		t.UnmatchedDomain = true
	}
	if rt := d.Route; rt != nil {
		t.Route = rt.Name
		if rt.VirtualService != "" {
			t.VirtualService = configName(rt.VirtualService)
		}
	}
	if d.Reply != nil {
		t.Outcome = outcomeOf(d.Reply)
		return
	}
	a := d.Route.Action
	t.Candidates = e.candidates(r, a, func(name string) (*cluster.Cluster, *cluster.Host, *forward.Reply) {
		cl, rp := forward.Target(e.clusters, a, name)
		if rp != nil {
			return nil, nil, rp
		}
		h, rp := forward.PickHost(cl, r, in.OriginalDst)
		return cl, h, rp
	})
	t.Outcome = e.summarize(t.Candidates, a, describeFault(d.Fault))
}

// upstreamDecision is the proxy's decision for one cluster name: the cluster (nil when it
// does not exist), the host it picks, or its reply.
type upstreamDecision func(name string) (*cluster.Cluster, *cluster.Host, *forward.Reply)

// candidates lists each cluster the action can send to, with what decide makes of it.
// r is the request, for the keep-alive note (nil for TCP).
func (e *Env) candidates(r *http.Request, a *resource.RouteAction, decide upstreamDecision) []Candidate {
	if len(a.WeightedClusters) == 0 {
		return []Candidate{e.candidate(r, a.Cluster, 0, 100, decide)}
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
		out = append(out, e.candidate(r, wc.Name, wc.Weight, pct, decide))
	}
	return out
}

func (e *Env) candidate(r *http.Request, name string, weight uint32, pct float64, decide upstreamDecision) Candidate {
	c := Candidate{Cluster: name, Weight: weight, Percent: pct}
	if cl := e.clusters.Get(name); cl != nil { // its hosts before the pick adds one (ORIGINAL_DST)
		cfg := cl.Config()
		c.Exists, c.Info, c.Type = true, cfg.Info, typeName(cfg.Type)
		c.Endpoints = e.endpoints(name, cl)
	}
	cl, h, rp := decide(name)
	if rp != nil {
		c.Outcome = outcomeOf(rp)
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
		c.Outcome.Endpoint = fmt.Sprintf("one of %s (%s)", strings.Join(usable, ", "), lbName(cl.Config().LBPolicy))
	}
	return c
}

// endpoints describes the hosts of cluster cl (named name), with the run-time health the
// sidecar reported.
func (e *Env) endpoints(name string, cl *cluster.Cluster) []EndpointState {
	var out []EndpointState
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
		out = append(out, es)
	}
	return out
}

// outcomeOf renders a reply the proxy decided on.
func outcomeOf(rp *forward.Reply) Outcome {
	switch {
	case rp.Flag != 0:
		return Outcome{Status: rp.Status, Flag: rp.Flag.String(), Body: rp.Body, LucidError: rp.LucidError()}
	case rp.Location != "":
		return Outcome{Status: rp.Status, Note: "redirect to " + rp.Location + " (configured by the route; no x-lucid-error)"}
	}
	return Outcome{Status: rp.Status, Body: rp.Body, Note: "direct response configured by the route (no x-lucid-error)"}
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
	if len(reach) == 0 { // every weight is 0: the proxy picks no cluster
		_, rp := forward.Target(e.clusters, a, "")
		o := outcomeOf(rp)
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
	if f == nil {
		return ""
	}
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
