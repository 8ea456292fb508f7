package dashboard

import (
	"cmp"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"time"
)

// Graph is the topology the browser draws (/dashboard/api/graph and the "graph" events).
type Graph struct {
	Time    time.Time `json:"time"`
	WindowS float64   `json:"window_s"` // the span edges' figures cover
	Nodes   []Node    `json:"nodes"`
	Edges   []Edge    `json:"edges"`
}

// Node is a workload, gateway, service or external host.
type Node struct {
	ID        string `json:"id"`
	Kind      string `json:"kind"` // workload, gateway, service, external, unknown
	Label     string `json:"label"`
	Detail    string `json:"detail,omitempty"` // "reviews v1", "subset v3", ...
	Workload  string `json:"workload,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	// Page is the workload page's name ("<workload>.<namespace>"); "" for nodes without one.
	Page      string `json:"page,omitempty"`
	Connected bool   `json:"connected"`
}

// Edge is traffic from one node to another over the window.
type Edge struct {
	From     string             `json:"from"`
	To       string             `json:"to"`
	Requests float64            `json:"requests"`
	RPS      float64            `json:"rps"`
	Success  float64            `json:"success"` // 0..1; 1 with no requests
	P99MS    *float64           `json:"p99_ms"`  // nil with no requests
	Flags    map[string]float64 `json:"flags,omitempty"`
	Health   string             `json:"health"` // idle, ok, warn, bad
	Cause    string             `json:"cause,omitempty"`
	Detail   string             `json:"detail,omitempty"` // the proxy's own explanation
}

// windowed sums every edge over the newest rounds within w: per proxy, its newest scrape
// minus its oldest one in the window. It returns the sums, the bounds and the span.
func windowed(rounds []round, w time.Duration) (map[edgeKey]*counts, []float64, float64) {
	out := map[edgeKey]*counts{}
	if len(rounds) < 2 {
		return out, nil, 0
	}
	newest := rounds[len(rounds)-1]
	var bounds []float64
	var span float64
	for name, n := range newest.Scrapes {
		var old *scrape
		var at time.Time
		for _, r := range rounds[:len(rounds)-1] {
			if newest.At.Sub(r.At) > w {
				continue
			}
			if s := r.Scrapes[name]; s != nil {
				old, at = s, r.At
				break
			}
		}
		if old == nil {
			continue
		}
		span = max(span, newest.At.Sub(at).Seconds())
		if bounds == nil {
			bounds = n.Bounds
		}
		for k, c := range n.Edges {
			sum := out[k]
			if sum == nil {
				sum = &counts{}
				out[k] = sum
			}
			sum.add(delta(c, old.Edges[k], len(n.Bounds)))
		}
	}
	return out, bounds, span
}

func (d *Dashboard) buildGraph(now time.Time) []byte {
	ps := d.proxies()
	d.mu.Lock()
	edges, bounds, span := windowed(d.rounds, d.o.Window)
	tags := map[string]nodeTag{}
	if n := len(d.rounds); n > 0 {
		for _, s := range d.rounds[n-1].Scrapes {
			for id, t := range s.Nodes {
				tags[id] = t
			}
		}
	}
	causes := make(map[string]cause, len(d.causes))
	for k, c := range d.causes {
		if now.Sub(c.At) <= d.o.Window {
			causes[k] = *c
		}
	}
	d.mu.Unlock()

	g := Graph{Time: now, WindowS: span, Nodes: []Node{}, Edges: []Edge{}}
	nodes := map[string]*Node{}
	for _, p := range ps {
		id := workloadNode(p.Workload, p.Namespace)
		n := &Node{ID: id, Kind: kindWorkload, Label: p.Workload, Workload: p.Workload, Namespace: p.Namespace, Page: p.Name, Connected: p.Connected}
		if p.Gateway {
			n.Kind = kindGateway
		}
		n.Detail = strings.TrimSpace(p.Labels["app"] + " " + p.Labels["version"])
		nodes[id] = n
	}
	node := func(id string) *Node {
		if n := nodes[id]; n != nil {
			return n
		}
		n := &Node{ID: id}
		switch {
		case id == unknownNode:
			n.Kind, n.Label = kindUnknown, "outside the mesh"
		case strings.HasPrefix(id, "wl:"):
			n.Kind, n.Label = kindWorkload, strings.TrimPrefix(id, "wl:")
			n.Workload, n.Namespace, _ = strings.Cut(n.Label, ".")
			n.Label = n.Workload
			if t, ok := tags[id]; ok {
				n.Detail = strings.TrimSpace(t.App + " " + t.Version)
			}
		case strings.HasPrefix(id, "svc:"):
			n.Kind, n.Label = kindService, shortHost(strings.TrimPrefix(id, "svc:"))
		default:
			n.Kind, n.Label = kindExternal, strings.TrimPrefix(id, "ext:")
		}
		nodes[id] = n
		return n
	}
	fromOutside(edges)
	for k, c := range edges {
		if c.Requests <= 0 || k.From == servedKey {
			continue
		}
		e := Edge{From: k.From, To: k.To, Requests: c.Requests, Success: 1, Flags: c.Flags}
		node(k.From)
		to := node(k.To)
		if span > 0 {
			e.RPS = c.Requests / span
		}
		e.Success = 1 - c.Errors/c.Requests
		total := c.Requests
		if q := quantile(0.99, bounds, c.Buckets, total); !math.IsNaN(q) {
			e.P99MS = &q
		}
		e.Health = health(e.Success)
		if c.Errors > 0 || len(c.Flags) > 0 {
			if cs, ok := d.causeOf(causes, k, tags); ok {
				e.Cause, e.Detail = cs.summary(), cs.Text
				if to.Kind == kindService && cs.Subset != "" && !strings.Contains(to.Detail, cs.Subset) {
					to.Detail = strings.TrimSpace(to.Detail + " subset " + cs.Subset)
				}
			} else {
				e.Cause = flagSummary(c.Flags)
			}
		}
		g.Edges = append(g.Edges, e)
	}
	for _, n := range nodes {
		g.Nodes = append(g.Nodes, *n)
	}
	slices.SortFunc(g.Nodes, func(a, b Node) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(g.Edges, func(a, b Edge) int {
		return cmp.Or(strings.Compare(a.From, b.From), strings.Compare(a.To, b.To))
	})
	b, _ := json.Marshal(g) // plain structs: cannot fail
	return b
}

// fromOutside adds the edges from outside the mesh: what a workload served beyond what
// the mesh's proxies sent it. Scrapes of different proxies are a moment apart, so a
// difference under 10 % (or under 3 requests) is taken as in flight, not as a client.
func fromOutside(edges map[edgeKey]*counts) {
	sent := map[string]*counts{}
	for k, c := range edges {
		if k.From == servedKey {
			continue
		}
		s := sent[k.To]
		if s == nil {
			s = &counts{}
			sent[k.To] = s
		}
		s.Requests += c.Requests
		s.Errors += c.Errors
	}
	for k, served := range edges {
		if k.From != servedKey {
			continue
		}
		var fromMesh counts
		if s := sent[k.To]; s != nil {
			fromMesh = *s
		}
		rest := served.Requests - fromMesh.Requests
		if rest < 3 || rest < 0.1*served.Requests {
			continue
		}
		// The outside clients' latency is not separable from the mesh's: the histogram is
		// everything the workload served.
		edges[edgeKey{From: unknownNode, To: k.To}] = &counts{Requests: rest, Errors: max(0, served.Errors-fromMesh.Errors), Flags: map[string]float64{}, Buckets: served.Buckets}
	}
}

// causeOf finds the newest explained failure for an edge: the caller's side first (its
// proxy saw UH, NR, UF...), then the destination's (UC, RBAC at the inbound side).
func (d *Dashboard) causeOf(causes map[string]cause, k edgeKey, tags map[string]nodeTag) (cause, bool) {
	host := strings.TrimPrefix(strings.TrimPrefix(k.To, "svc:"), "ext:")
	if t, ok := tags[k.To]; ok && t.Service != "" {
		host = t.Service
	}
	if c, ok := causes[outKey(k.From, host)]; ok {
		return c, true
	}
	c, ok := causes[inKey(k.To)]
	return c, ok
}

// flagSummary explains an edge's commonest response flag when no proxy told why.
func flagSummary(flags map[string]float64) string {
	best, n := "", 0.0
	for f, v := range flags {
		if v > n || (v == n && f < best) {
			best, n = f, v
		}
	}
	if best == "" {
		return "5xx"
	}
	if m, ok := flagMeaning[best]; ok {
		return best + ": " + m
	}
	return best
}

// health colours an edge: ok ≥ 99 % success, warn ≥ 95 %, bad below.
func health(success float64) string {
	switch {
	case success >= 0.99:
		return "ok"
	case success >= 0.95:
		return "warn"
	}
	return "bad"
}

// shortHost drops Kubernetes' DNS suffix: reviews.default.svc.cluster.local → reviews.default.
func shortHost(h string) string { return strings.TrimSuffix(h, ".svc.cluster.local") }
