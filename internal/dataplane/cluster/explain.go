package cluster

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// NoHealthyError says a cluster has no host to send the request to (Envoy's UH, 503 "no
// healthy upstream"). Explanation is one line, e.g.
//
//	subset "v1" of reviews.default.svc.cluster.local selects 0 of 2 endpoints (version=v1: 0 match; labels present: version=v2, (none))
//	cluster outbound|9080||ratings.default.svc.cluster.local has no endpoints: no workload of ratings.default.svc.cluster.local is known to the control plane
//	all 3 endpoints of cluster X are unhealthy (UNHEALTHY ×2, DRAINING ×1)
type NoHealthyError struct {
	Cluster     string
	Explanation string
}

// Error returns the explanation.
func (e *NoHealthyError) Error() string { return e.Explanation }

// explainNoHealthy says why c has no usable host.
func (c *Cluster) explainNoHealthy() string {
	if len(c.hosts) == 0 {
		if info := c.cfg.Info; info.Subset != "" || len(info.Selector) > 0 {
			return c.explainEmptySubset()
		}
		if h := c.serviceHost(); h != "" {
			return fmt.Sprintf("cluster %s has no endpoints: no workload of %s is known to the control plane", c.cfg.Name, h)
		}
		return fmt.Sprintf("cluster %s has no endpoints", c.cfg.Name)
	}
	counts := map[string]int{}
	weightless := false
	for _, h := range c.hosts {
		switch {
		case !h.Endpoint.Usable():
			counts[h.Endpoint.Health.String()]++
		case h.Endpoint.Weight == 0:
			counts["weight 0"]++
			weightless = true
		}
	}
	state := "unhealthy"
	if weightless {
		state = "unusable"
	}
	if len(c.hosts) == 1 {
		return fmt.Sprintf("the only endpoint of cluster %s is %s (%s)", c.cfg.Name, state, tally(counts))
	}
	return fmt.Sprintf("all %d endpoints of cluster %s are %s (%s)", len(c.hosts), c.cfg.Name, state, tally(counts))
}

// tally renders counts as "A ×2, B ×1": largest first, then by name; "(none)" sorts last.
func tally(counts map[string]int) string {
	keys := slices.Collect(maps.Keys(counts))
	slices.SortFunc(keys, func(a, b string) int {
		if c := cmp.Compare(counts[b], counts[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + " ×" + strconv.Itoa(counts[k])
	}
	return strings.Join(parts, ", ")
}

// serviceHost is the service the cluster is for: Info.ServiceHost, or the host part of an
// Istio cluster name "outbound|9080|v1|reviews.default.svc.cluster.local".
func (c *Cluster) serviceHost() string {
	if c.cfg.Info.ServiceHost != "" {
		return c.cfg.Info.ServiceHost
	}
	if parts := strings.Split(c.cfg.Name, "|"); len(parts) == 4 && parts[3] != "" {
		return parts[3]
	}
	return ""
}

func (c *Cluster) subsetName() string {
	if c.cfg.Info.Subset != "" {
		return c.cfg.Info.Subset
	}
	if parts := strings.Split(c.cfg.Name, "|"); len(parts) == 4 {
		return parts[2]
	}
	return ""
}

// explainEmptySubset explains a subset cluster with no endpoints by comparing its label
// selector with the labels of the service's endpoints (Info.ServiceCluster in the same
// Manager).
func (c *Cluster) explainEmptySubset() string {
	info := c.cfg.Info
	svcHost := c.serviceHost()
	if svcHost == "" {
		svcHost = c.cfg.Name
	}
	head := fmt.Sprintf("subset %q of %s", c.subsetName(), svcHost)
	if info.ServiceCluster == "" {
		return head + " has no endpoints"
	}
	svc := c.m.Get(info.ServiceCluster)
	if svc == nil {
		return fmt.Sprintf("%s has no endpoints (service cluster %s is unknown)", head, info.ServiceCluster)
	}
	hosts := svc.Hosts()
	if len(hosts) == 0 {
		return fmt.Sprintf("%s selects 0 of 0 endpoints: no workload of %s is known to the control plane", head, svcHost)
	}
	s := fmt.Sprintf("%s selects 0 of %d endpoints", head, len(hosts))
	if len(info.Selector) == 0 {
		return s
	}
	keys := slices.Sorted(maps.Keys(info.Selector))
	var parts []string
	for _, k := range keys {
		n := 0
		for _, h := range hosts {
			if v, ok := h.Endpoint.Labels[k]; ok && v == info.Selector[k] {
				n++
			}
		}
		parts = append(parts, fmt.Sprintf("%s=%s: %d match", k, info.Selector[k], n))
	}
	present := map[string]int{}
	for _, h := range hosts {
		var kv []string
		for _, k := range keys {
			if v, ok := h.Endpoint.Labels[k]; ok {
				kv = append(kv, k+"="+v)
			}
		}
		if len(kv) == 0 {
			present["(none)"]++
		} else {
			present[strings.Join(kv, ",")]++
		}
	}
	parts = append(parts, "labels present: "+labelsPresent(present))
	return s + " (" + strings.Join(parts, "; ") + ")"
}

// labelsPresent renders label sets sorted by name with "(none)" last, each with " ×N"
// when several endpoints share it.
func labelsPresent(present map[string]int) string {
	keys := slices.Sorted(maps.Keys(present))
	if i := slices.Index(keys, "(none)"); i >= 0 {
		keys = append(slices.Delete(keys, i, i+1), "(none)")
	}
	for i, k := range keys {
		if n := present[k]; n > 1 {
			keys[i] = k + " ×" + strconv.Itoa(n)
		}
	}
	return strings.Join(keys, ", ")
}
