package cluster

import "time"

// Retries to other localities (Istio's retryRemoteLocalities, Envoy's retry_priority
// envoy.retry_priorities.previous_priorities).
//
// Envoy leaves the priorities already tried out of a retry's host selection, so a retry
// goes to the next priority; Istio gives each locality its own priority when locality load
// balancing is on. Lucid picks a retry's host among the usable hosts of every priority,
// preferring, in order: a priority not tried yet, then a locality not tried yet, then the
// lowest priority; hosts already tried and hosts ejected by outlier detection are left out.
// When no such host exists the retry is picked as usual (Envoy, too, falls back to the
// original priority load once every priority was tried).

// pickRemote picks a host for a retry that prefers other priorities and localities than
// the hosts in tried. nil when no host qualifies.
func (c *Cluster) pickRemote(tried []*Host) *Host {
	if len(tried) == 0 {
		return nil
	}
	triedPrio := map[uint32]bool{}
	triedLoc := map[string]bool{}
	for _, t := range tried {
		triedPrio[t.Endpoint.Priority] = true
		triedLoc[t.Endpoint.Locality] = true
	}
	now := time.Now().UnixNano()
	rank := func(h *Host) int {
		r := 0
		if triedPrio[h.Endpoint.Priority] {
			r += 2
		}
		if triedLoc[h.Endpoint.Locality] {
			r++
		}
		return r
	}
	var best []*Host
	bestRank, bestPrio := 4, uint32(0)
	for _, h := range c.hosts {
		if !h.Endpoint.Usable() || h.Endpoint.Weight == 0 || excluded(h, tried) ||
			(h.od != nil && h.od.ejectedNow(now)) {
			continue
		}
		r, p := rank(h), h.Endpoint.Priority
		switch {
		case r < bestRank || (r == bestRank && p < bestPrio):
			best, bestRank, bestPrio = append(best[:0], h), r, p
		case r == bestRank && p == bestPrio:
			best = append(best, h)
		}
	}
	if len(best) == 0 || bestRank == 3 {
		return nil // nothing remote: the usual pick (with previous_hosts) decides
	}
	return best[c.m.rnd(uint64(len(best)))]
}
