package main

import (
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// convergence is the control plane's pilot_proxy_convergence_time histogram: per push to a
// proxy, the time from the configuration change to the last response of the push sent.
type convergence struct {
	count   uint64
	buckets map[float64]uint64 // upper bound (s) → cumulative count
}

// scrapeConvergence reads the histogram from the control plane's /metrics on ip:15014.
func scrapeConvergence(ip string) (convergence, error) {
	c := convergence{buckets: map[float64]uint64{}}
	resp, err := http.Get("http://" + net.JoinHostPort(ip, "15014") + "/metrics")
	if err != nil {
		return c, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return c, fmt.Errorf("metrics: %w", err)
	}
	mf := families["pilot_proxy_convergence_time"]
	if mf == nil || len(mf.GetMetric()) == 0 {
		return c, nil
	}
	h := mf.GetMetric()[0].GetHistogram()
	c.count = h.GetSampleCount()
	for _, b := range h.GetBucket() {
		c.buckets[b.GetUpperBound()] = b.GetCumulativeCount()
	}
	return c, nil
}

// since is the histogram of the pushes after before.
func (c convergence) since(before convergence) convergence {
	out := convergence{count: c.count - before.count, buckets: map[float64]uint64{}}
	for b, n := range c.buckets {
		out.buckets[b] = n - before.buckets[b]
	}
	return out
}

// String renders the share of pushes within each bound.
func (c convergence) String() string {
	if c.count == 0 {
		return "no push"
	}
	var parts []string
	for _, b := range []float64{0.1, 0.5, 1, 3, 5} {
		if n, ok := c.buckets[b]; ok {
			parts = append(parts, fmt.Sprintf("≤ %gs %.1f %%", b, 100*float64(n)/float64(c.count)))
		}
	}
	return fmt.Sprintf("%d pushes: %s", c.count, strings.Join(parts, ", "))
}
