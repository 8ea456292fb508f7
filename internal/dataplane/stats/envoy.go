package stats

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Stat is one Envoy-style stat value.
type Stat struct {
	Name  string `json:"name"`
	Value uint64 `json:"value"`
}

// Snapshot reads every counter and gauge source once and returns the stats sorted by
// name, keeping those that match filter (nil: all) and, when usedOnly, are non-zero.
func (s *Stats) Snapshot(filter *regexp.Regexp, usedOnly bool) []Stat {
	counters, gauges := s.sources()
	var out []Stat
	emit := func(name string, v uint64) {
		if usedOnly && v == 0 {
			return
		}
		if filter != nil && !filter.MatchString(name) {
			return
		}
		out = append(out, Stat{Name: name, Value: v})
	}
	for _, src := range counters {
		src(emit)
	}
	for _, src := range gauges {
		src(emit)
	}
	slices.SortStableFunc(out, func(a, b Stat) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// WriteText writes Envoy's /stats plain format: one "name: value" line per stat, sorted
// by name, honouring filter (nil: all) and usedOnly (non-zero values only).
func (s *Stats) WriteText(w io.Writer, filter *regexp.Regexp, usedOnly bool) error {
	bw := bufio.NewWriter(w)
	var num [20]byte
	for _, st := range s.Snapshot(filter, usedOnly) {
		_, _ = bw.WriteString(st.Name)
		_, _ = bw.WriteString(": ")
		_, _ = bw.Write(strconv.AppendUint(num[:0], st.Value, 10))
		_ = bw.WriteByte('\n')
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("stats: write text: %w", err)
	}
	return nil
}

// WriteJSON writes Envoy's /stats?format=json shape: {"stats":[{"name":..,"value":..}]}.
func (s *Stats) WriteJSON(w io.Writer, filter *regexp.Regexp, usedOnly bool) error {
	st := s.Snapshot(filter, usedOnly)
	if st == nil {
		st = []Stat{}
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(struct {
		Stats []Stat `json:"stats"`
	}{st}); err != nil {
		return fmt.Errorf("stats: write json: %w", err)
	}
	return nil
}

// clusterStatMarkers are stat-name parts with dots of their own; a cluster stat's name
// starts at the first of them, else after the last dot.
var clusterStatMarkers = []string{".circuit_breakers.", ".outlier_detection.", ".http1.",
	".http2.", ".internal.", ".external.", ".zone.", ".lb_subsets_"}

// PrometheusName converts an Envoy stat name the way Envoy's /stats/prometheus does for
// the tags Lucid's stats carry: cluster.<cluster_name>.<stat> becomes
// envoy_cluster_<stat> with label cluster_name; listener.<address>.<stat> becomes
// envoy_listener_<stat> with label listener_address; rbac.policy.<policy>.denied (Lucid's
// refusals per AuthorizationPolicy rule) becomes envoy_rbac_policy_denied with label
// policy; any other name becomes envoy_<name>.
// Characters outside [a-zA-Z0-9_] become '_'. label is "" when there is none.
func PrometheusName(stat string) (name, label, value string) {
	if rest, ok := strings.CutPrefix(stat, "cluster."); ok {
		if i := splitTagged(rest); i > 0 {
			return "envoy_cluster_" + sanitize(rest[i+1:]), "cluster_name", rest[:i]
		}
	}
	if rest, ok := strings.CutPrefix(stat, "listener."); ok {
		if i := strings.LastIndexByte(rest, '.'); i > 0 && i < len(rest)-1 {
			return "envoy_listener_" + sanitize(rest[i+1:]), "listener_address", rest[:i]
		}
	}
	if policy, ok := strings.CutPrefix(stat, "rbac.policy."); ok && strings.HasSuffix(policy, ".denied") {
		return "envoy_rbac_policy_denied", "policy", strings.TrimSuffix(policy, ".denied")
	}
	return "envoy_" + sanitize(stat), "", ""
}

// splitTagged returns the index of the dot that ends the cluster name in rest, or -1.
func splitTagged(rest string) int {
	best := -1
	for _, m := range clusterStatMarkers {
		if i := strings.Index(rest, m); i > 0 && (best < 0 || i < best) {
			best = i
		}
	}
	if best > 0 {
		return best
	}
	if i := strings.LastIndexByte(rest, '.'); i > 0 && i < len(rest)-1 {
		return i
	}
	return -1
}

func sanitize(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

type descKey struct {
	name, label string
	gauge       bool
}

// envoyCollector exposes the counter and gauge sources to Prometheus. It describes
// nothing up front (an unchecked collector): the set of stats changes with config.
type envoyCollector struct {
	s *Stats

	mu    sync.Mutex // guards descs
	descs map[descKey]*prometheus.Desc
}

func (c *envoyCollector) Describe(chan<- *prometheus.Desc) {}

func (c *envoyCollector) Collect(ch chan<- prometheus.Metric) {
	counters, gauges := c.s.sources()
	collect := func(srcs []CounterSource, gauge bool) {
		vt := prometheus.CounterValue
		if gauge {
			vt = prometheus.GaugeValue
		}
		for _, src := range srcs {
			src(func(stat string, v uint64) {
				name, label, value := PrometheusName(stat)
				d := c.desc(descKey{name: name, label: label, gauge: gauge})
				var m prometheus.Metric
				var err error
				if label == "" {
					m, err = prometheus.NewConstMetric(d, vt, float64(v))
				} else {
					m, err = prometheus.NewConstMetric(d, vt, float64(v), value)
				}
				if err != nil {
					m = prometheus.NewInvalidMetric(d, err)
				}
				ch <- m
			})
		}
	}
	collect(counters, false)
	collect(gauges, true)
}

func (c *envoyCollector) desc(k descKey) *prometheus.Desc {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.descs[k]
	if !ok {
		var labels []string
		if k.label != "" {
			labels = []string{k.label}
		}
		d = prometheus.NewDesc(k.name, "", labels, nil)
		c.descs[k] = d
	}
	return d
}
