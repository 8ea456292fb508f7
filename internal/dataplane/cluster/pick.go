package cluster

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"sync"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// PickContext is what Pick needs to know about the request.
type PickContext struct {
	// OriginalDst is the "host:port" the request was addressed to; ORIGINAL_DST clusters
	// use it as the endpoint (forward fills it from the destination, or from
	// x-envoy-original-dst-host when the cluster's UseHTTPHeader is set).
	OriginalDst string
	// Exclude lists hosts already tried (the previous_hosts retry predicate): Pick avoids
	// them while another usable host exists. Hosts are compared with Host.Same.
	Exclude []*Host
	// Hash is the request hash for RING_HASH and MAGLEV (HasHash set); without one those
	// policies pick at random, as Envoy does.
	Hash    uint64
	HasHash bool
	// RemoteLocalities: the request is a retry and the policy prefers other localities
	// (retryRemoteLocalities); Tried are the hosts of the earlier attempts (locality.go).
	RemoteLocalities bool
	Tried            []*Host
}

const maglevPolicy = resource.Maglev

// Pick chooses an upstream host among the usable ones (see Cluster), by the cluster's
// lb_policy:
//   - LEAST_REQUEST: power of two choices (two random draws, with replacement, keeping the
//     host with fewer active requests; ties keep the first). With unequal weights the draws
//     are weighted and hosts compare by active/weight, so idle hosts share load by weight
//     (Envoy uses an EDF schedule with weight/(active+1); the long-run split is the same).
//   - ROUND_ROBIN: in order; with unequal weights, smooth weighted round robin.
//   - RANDOM: uniform, weights ignored (as Envoy does).
//   - RING_HASH and MAGLEV: by pc.Hash (hash.go); random without a hash.
//   - ORIGINAL_DST clusters: the host for pc.OriginalDst, cached by address.
//
// Hosts ejected by outlier detection are left out, unless fewer than the panic threshold
// (healthy_panic_threshold) of the hosts are left, when all hosts are used.
//
// When no host can be picked Pick counts upstream_cx_none_healthy and returns a
// *NoHealthyError (Envoy's UH) that explains why. Pick is safe for concurrent use and does
// not allocate in the common path.
func (c *Cluster) Pick(pc PickContext) (*Host, error) {
	if c.orig != nil {
		return c.pickOriginalDst(pc)
	}
	n := len(c.usable)
	if n == 0 {
		c.stats.UpstreamCxNoneHealthy.Add(1)
		return nil, &NoHealthyError{Cluster: c.cfg.Name, Explanation: c.explainNoHealthy()}
	}
	ejected := c.ejectedHosts()
	if len(ejected) > 0 {
		if c.panicking(n - len(ejected)) {
			ejected = nil
		} else if len(ejected) == n {
			c.stats.UpstreamCxNoneHealthy.Add(1)
			return nil, &NoHealthyError{Cluster: c.cfg.Name, Explanation: c.explainAllEjected(ejected)}
		}
	}
	if pc.RemoteLocalities {
		if h := c.pickRemote(pc.Tried); h != nil {
			return h, nil
		}
	}
	if n == 1 {
		return c.usable[0], nil
	}
	exclude := pc.Exclude
	if len(ejected) > 0 {
		exclude = append(slices.Clip(ejected), pc.Exclude...)
	}
	var h *Host
	switch c.cfg.LBPolicy {
	case resource.RoundRobin:
		if c.swrr != nil {
			h = c.swrr.pick(c.usable, exclude)
		} else {
			i := int((c.rr.Add(1) - 1) % uint64(n))
			h = c.usable[c.avoid(i, exclude)]
		}
	case resource.Random:
		h = c.usable[c.avoid(int(c.m.rnd(uint64(n))), exclude)]
	case resource.RingHash, resource.Maglev:
		hash := pc.Hash
		if !pc.HasHash {
			hash = c.m.rnd(math.MaxUint64)
		}
		var skip func(*Host) bool
		if len(exclude) > 0 {
			skip = func(h *Host) bool { return excluded(h, exclude) }
		}
		h = c.pickHashed(hash, skip)
	default: // LeastRequest
		h = c.pickLeastRequest(exclude)
	}
	if len(ejected) > 0 && excluded(h, ejected) {
		// Every host not ejected was excluded as already tried: take one of them anyway.
		for _, u := range c.usable {
			if !excluded(u, ejected) {
				return u, nil
			}
		}
	}
	return h, nil
}

// panicking says whether the load balancer is in panic mode with healthy of the usable
// hosts left: below healthy_panic_threshold percent (unset: 50; Istio's minHealthPercent
// default 0 turns it off) it uses every host.
func (c *Cluster) panicking(healthy int) bool {
	t := c.cfg.HealthyPanicThreshold
	if t < 0 {
		t = 50
	}
	return t > 0 && float64(healthy)*100/float64(len(c.usable)) < t
}

func (c *Cluster) pickLeastRequest(exclude []*Host) *Host {
	a, b := c.draw(exclude), c.draw(exclude)
	ha, hb := c.usable[a], c.usable[b]
	ra, rb := ha.Stats.RqActive.Load(), hb.Stats.RqActive.Load()
	if c.equalWeights {
		if rb < ra {
			return hb
		}
		return ha
	}
	// rb/wb < ra/wa: fewer active requests per unit of weight; idle hosts tie, so the
	// first weighted draw wins and the split follows the weights.
	if rb*int64(ha.Endpoint.Weight) < ra*int64(hb.Endpoint.Weight) {
		return hb
	}
	return ha
}

// draw returns a random index into usable (weighted unless weights are equal), moved off
// excluded hosts.
func (c *Cluster) draw(exclude []*Host) int {
	n := len(c.usable)
	if c.equalWeights {
		return c.avoid(int(c.m.rnd(uint64(n))), exclude)
	}
	x := c.m.rnd(c.cumWeights[n-1])
	i := sort.Search(n, func(i int) bool { return x < c.cumWeights[i] })
	return c.avoid(i, exclude)
}

// avoid returns i, or the next index after it whose host is not excluded; i when every
// host is excluded.
func (c *Cluster) avoid(i int, exclude []*Host) int {
	if len(exclude) == 0 {
		return i
	}
	n := len(c.usable)
	for k := 0; k < n; k++ {
		j := (i + k) % n
		if !excluded(c.usable[j], exclude) {
			return j
		}
	}
	return i
}

func excluded(h *Host, exclude []*Host) bool {
	for _, e := range exclude {
		if h.Same(e) {
			return true
		}
	}
	return false
}

// smoothRR is smooth weighted round robin: each pick adds every host's weight to its
// current value, picks the largest and subtracts the total from it. Over sum(weights) picks
// each host is chosen exactly weight times, spread out.
type smoothRR struct {
	mu      sync.Mutex
	current []int64 // guarded by mu; one per usable host
}

func (s *smoothRR) pick(hosts []*Host, exclude []*Host) *Host {
	s.mu.Lock()
	defer s.mu.Unlock()
	var total int64
	best, bestAny := -1, -1
	for i, h := range hosts {
		w := int64(h.Endpoint.Weight)
		s.current[i] += w
		total += w
		if bestAny < 0 || s.current[i] > s.current[bestAny] {
			bestAny = i
		}
		if !excluded(h, exclude) && (best < 0 || s.current[i] > s.current[best]) {
			best = i
		}
	}
	if best < 0 {
		best = bestAny
	}
	s.current[best] -= total
	return hosts[best]
}

func (c *Cluster) pickOriginalDst(pc PickContext) (*Host, error) {
	if pc.OriginalDst == "" {
		c.stats.UpstreamCxNoneHealthy.Add(1)
		return nil, &NoHealthyError{Cluster: c.cfg.Name,
			Explanation: fmt.Sprintf("cluster %s has no original destination for this request", c.cfg.Name)}
	}
	if h, ok := c.orig.byAddr.Load(pc.OriginalDst); ok {
		return h.(*Host), nil
	}
	ep, err := originalDstEndpoint(pc.OriginalDst)
	if err != nil {
		c.stats.UpstreamCxNoneHealthy.Add(1)
		return nil, &NoHealthyError{Cluster: c.cfg.Name,
			Explanation: fmt.Sprintf("original destination %q of cluster %s is not host:port: %v", pc.OriginalDst, c.cfg.Name, err)}
	}
	return c.orig.get(pc.OriginalDst, ep, c.stats), nil
}

func originalDstEndpoint(addr string) (resource.Endpoint, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return resource.Endpoint{}, fmt.Errorf("split: %w", err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 || host == "" {
		return resource.Endpoint{}, fmt.Errorf("bad host or port in %q", addr)
	}
	ep := resource.Endpoint{Port: uint32(p), Weight: 1}
	if ip, err := netip.ParseAddr(host); err == nil {
		ep.Address = netip.AddrPortFrom(ip, uint16(p))
	} else {
		ep.Hostname = host
	}
	return ep, nil
}
