package cluster

import (
	"math"
	"slices"
	"strconv"
	"sync"

	"github.com/cespare/xxhash/v2"
)

// Consistent hashing: RING_HASH (Ketama-style ring of xxHash64("address_i") points, each
// host getting points in proportion to its weight) and MAGLEV (a lookup table filled from
// per-host permutations). Both are built lazily on the first hashed pick of a cluster
// version, and both map a request hash (HashKey) to a host the same way on every proxy.

// Defaults of Envoy's ring_hash_lb_config and maglev_lb_config.
const (
	defaultRingMin   = 1024
	maxRingSize      = 8 * 1024 * 1024
	defaultMaglevLen = 65537
)

// HashKey hashes one request value (a header, cookie, source IP or query parameter) as
// Envoy's hash policies do (xxHash64, seed 0).
func HashKey(s string) uint64 { return xxhash.Sum64String(s) }

// CombineHash folds the hash of one more hash policy into h (Envoy's rotate-and-xor).
func CombineHash(h, next uint64) uint64 { return (h<<1 | h>>63) ^ next }

// hashTable is a built ring or Maglev table over the cluster's usable hosts.
type hashTable struct {
	once   sync.Once
	ring   []ringPoint // RING_HASH, sorted by hash
	maglev []int32     // MAGLEV: index into usable
}

type ringPoint struct {
	hash uint64
	host int32 // index into usable
}

func (c *Cluster) buildRing() []ringPoint {
	n := len(c.usable)
	minSize := c.cfg.RingHashMinSize
	if minSize == 0 {
		minSize = defaultRingMin
	}
	var total float64
	minW := math.MaxFloat64
	for _, h := range c.usable {
		w := float64(h.Endpoint.Weight)
		total += w
		minW = min(minW, w)
	}
	// Scale so that the lightest host gets at least one point and the ring has at least
	// minSize points.
	scale := math.Min(math.Ceil(minW/total*float64(minSize))*total/minW, float64(maxRingSize)) / total
	ring := make([]ringPoint, 0, int(scale*total)+n)
	for i, h := range c.usable {
		points := int(math.Ceil(float64(h.Endpoint.Weight) * scale))
		buf := make([]byte, 0, len(h.Addr)+8)
		for j := 0; j < points; j++ {
			buf = append(buf[:0], h.Addr...)
			buf = append(buf, '_')
			buf = strconv.AppendInt(buf, int64(j), 10)
			ring = append(ring, ringPoint{hash: xxhash.Sum64(buf), host: int32(i)})
		}
	}
	slices.SortFunc(ring, func(a, b ringPoint) int {
		switch {
		case a.hash < b.hash:
			return -1
		case a.hash > b.hash:
			return 1
		}
		return 0
	})
	return ring
}

func (c *Cluster) buildMaglev() []int32 {
	m := c.cfg.MaglevTableSize
	if m == 0 {
		m = defaultMaglevLen
	}
	n := len(c.usable)
	offset := make([]uint64, n)
	skip := make([]uint64, n)
	next := make([]uint64, n)
	weight := make([]float64, n)
	var maxW float64
	for i, h := range c.usable {
		d := xxhash.NewWithSeed(1)
		_, _ = d.WriteString(h.Addr)
		offset[i] = xxhash.Sum64String(h.Addr) % m
		skip[i] = d.Sum64()%(m-1) + 1
		weight[i] = float64(h.Endpoint.Weight)
		maxW = max(maxW, weight[i])
	}
	table := make([]int32, m)
	for i := range table {
		table[i] = -1
	}
	target := make([]float64, n)
	var filled uint64
	for filled < m {
		for i := 0; i < n && filled < m; i++ {
			// Weighted fill: a host takes a turn each time its accumulated share passes 1.
			target[i] += weight[i] / maxW
			if target[i] < 1 {
				continue
			}
			target[i]--
			for {
				slot := (offset[i] + next[i]*skip[i]) % m
				next[i]++
				if table[slot] < 0 {
					table[slot] = int32(i)
					filled++
					break
				}
			}
		}
	}
	return table
}

// pickHashed chooses the host for hash among the usable hosts, skipping unwanted ones
// (ejected, or already tried) by walking the ring (or probing the table) onward.
func (c *Cluster) pickHashed(hash uint64, skip func(*Host) bool) *Host {
	c.hashed.once.Do(func() {
		if c.cfg.LBPolicy == maglevPolicy {
			c.hashed.maglev = c.buildMaglev()
		} else {
			c.hashed.ring = c.buildRing()
		}
	})
	if t := c.hashed.maglev; t != nil {
		m := uint64(len(t))
		for k := uint64(0); k < m && k < 64; k++ {
			h := c.usable[t[(hash+k)%m]]
			if skip == nil || !skip(h) {
				return h
			}
		}
		return c.usable[t[hash%m]]
	}
	r := c.hashed.ring
	i, _ := slices.BinarySearchFunc(r, hash, func(p ringPoint, h uint64) int {
		switch {
		case p.hash < h:
			return -1
		case p.hash > h:
			return 1
		}
		return 0
	})
	for k := 0; k < len(r); k++ {
		h := c.usable[r[(i+k)%len(r)].host]
		if skip == nil || !skip(h) {
			return h
		}
	}
	return c.usable[r[i%len(r)].host]
}
