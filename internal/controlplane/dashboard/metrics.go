package dashboard

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Node ids of the topology: a workload (wl:<name>.<namespace>), a service no workload
// answered for (svc:<host>, e.g. every request failed UH), a host outside the mesh
// (ext:<host>), and clients outside the mesh (unknown).
const (
	kindWorkload = "workload"
	kindGateway  = "gateway"
	kindService  = "service"
	kindExternal = "external"
	kindUnknown  = "unknown"
	unknownNode  = "unknown"
	// servedKey is the From of a destination's own report of what it served (reporter
	// "destination"; the source is not known there). graph.go turns the part no mesh
	// source reported into an edge from outside the mesh.
	servedKey = "served"
)

func workloadNode(name, ns string) string { return "wl:" + name + "." + ns }

// edgeKey is one edge of the topology: from → to, node ids.
type edgeKey struct{ From, To string }

// counts are cumulative request counters of one edge, as one proxy reported them.
type counts struct {
	Requests float64
	Errors   float64            // 5xx, or no response at all (code 0)
	Flags    map[string]float64 // by response flag ("UH"); requests without a flag are not here
	Buckets  []float64          // cumulative duration histogram, per bound in scrape.Bounds
}

// scrape is what one proxy's metrics said at one time.
type scrape struct {
	Edges  map[edgeKey]*counts
	Bounds []float64          // the duration histogram's upper bounds, ms
	Nodes  map[string]nodeTag // app/version seen for destination workloads
}

type nodeTag struct{ App, Version, Service string }

// parseMetrics reads Istio's request metrics from a Prometheus text exposition:
// istio_requests_total and istio_request_duration_milliseconds. An edge is counted by
// the proxy at its source (reporter="source"); a destination's inbound report is kept
// apart, From servedKey: what the workload served, whoever sent it.
func parseMetrics(r io.Reader) (*scrape, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	s := &scrape{Edges: map[edgeKey]*counts{}, Nodes: map[string]nodeTag{}}
	get := func(k edgeKey) *counts {
		c := s.Edges[k]
		if c == nil {
			c = &counts{Flags: map[string]float64{}}
			s.Edges[k] = c
		}
		return c
	}
	if f := fams["istio_requests_total"]; f != nil {
		for _, m := range f.GetMetric() {
			l := labels(m)
			k, ok := s.edgeOf(l)
			if !ok {
				continue
			}
			v := m.GetCounter().GetValue()
			c := get(k)
			c.Requests += v
			code, _ := strconv.Atoi(l["response_code"])
			if code == 0 || code >= 500 {
				c.Errors += v
			}
			if fl := l["response_flags"]; fl != "" && fl != "-" {
				for name := range strings.SplitSeq(fl, ",") {
					c.Flags[name] += v
				}
			}
		}
	}
	if f := fams["istio_request_duration_milliseconds"]; f != nil {
		for _, m := range f.GetMetric() {
			k, ok := s.edgeOf(labels(m))
			if !ok {
				continue
			}
			bs := m.GetHistogram().GetBucket()
			if s.Bounds == nil {
				for _, b := range bs {
					if !math.IsInf(b.GetUpperBound(), 1) {
						s.Bounds = append(s.Bounds, b.GetUpperBound())
					}
				}
			}
			c := get(k)
			if c.Buckets == nil {
				c.Buckets = make([]float64, len(s.Bounds))
			}
			for i, b := range bs {
				if i < len(c.Buckets) && b.GetUpperBound() == s.Bounds[i] {
					c.Buckets[i] += float64(b.GetCumulativeCount())
				}
			}
		}
	}
	return s, nil
}

func labels(m *dto.Metric) map[string]string {
	out := make(map[string]string, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// edgeOf names the edge a sample counts, and notes what it says of the destination.
func (s *scrape) edgeOf(l map[string]string) (edgeKey, bool) {
	src, srcNS := l["source_workload"], l["source_workload_namespace"]
	dst, dstNS := l["destination_workload"], l["destination_workload_namespace"]
	svc := l["destination_service"]
	var k edgeKey
	switch l["reporter"] {
	case "source":
		if src == "" || src == "unknown" {
			return k, false
		}
		k.From = workloadNode(src, srcNS)
	case "destination":
		k.From = servedKey
	default:
		return k, false
	}
	switch {
	case dst != "" && dst != "unknown":
		k.To = workloadNode(dst, dstNS)
		s.Nodes[k.To] = nodeTag{App: l["destination_app"], Version: l["destination_version"], Service: svc}
	case svc == "" || svc == "unknown":
		k.To = "svc:unknown"
	case strings.HasSuffix(svc, ".svc.cluster.local") || strings.Count(svc, ".") == 0:
		k.To = "svc:" + svc
	default:
		k.To = "ext:" + svc
	}
	return k, true
}

// delta is what happened on an edge between two scrapes of the same proxy. A counter
// that went down means the proxy restarted: everything since is new.
func delta(newer, older *counts, bounds int) counts {
	d := counts{Flags: map[string]float64{}, Buckets: make([]float64, bounds)}
	if older == nil || newer.Requests < older.Requests {
		older = &counts{}
	}
	d.Requests = newer.Requests - older.Requests
	d.Errors = max(0, newer.Errors-older.Errors)
	for f, v := range newer.Flags {
		if x := v - older.Flags[f]; x > 0 {
			d.Flags[f] = x
		}
	}
	for i := range min(bounds, len(newer.Buckets)) {
		var o float64
		if i < len(older.Buckets) {
			o = older.Buckets[i]
		}
		d.Buckets[i] = max(0, newer.Buckets[i]-o)
	}
	return d
}

func (c *counts) add(d counts) {
	c.Requests += d.Requests
	c.Errors += d.Errors
	if c.Flags == nil {
		c.Flags = map[string]float64{}
	}
	for f, v := range d.Flags {
		c.Flags[f] += v
	}
	if len(c.Buckets) < len(d.Buckets) {
		c.Buckets = append(c.Buckets, make([]float64, len(d.Buckets)-len(c.Buckets))...)
	}
	for i, v := range d.Buckets {
		c.Buckets[i] += v
	}
}

// quantile estimates the q-quantile (0..1) of a cumulative histogram as Prometheus's
// histogram_quantile does: linear within the bucket, the highest finite bound past it.
// total counts every observation, including those above the last bound.
func quantile(q float64, bounds, cum []float64, total float64) float64 {
	if total <= 0 || len(bounds) == 0 {
		return math.NaN()
	}
	rank := q * total
	i := slices.IndexFunc(cum, func(c float64) bool { return c >= rank })
	if i < 0 {
		return bounds[len(bounds)-1]
	}
	lo, below := 0.0, 0.0
	if i > 0 {
		lo, below = bounds[i-1], cum[i-1]
	}
	in := cum[i] - below
	if in <= 0 {
		return bounds[i]
	}
	return lo + (bounds[i]-lo)*(rank-below)/in
}
