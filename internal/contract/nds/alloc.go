package nds

import (
	"hash/fnv"
	"net/netip"
)

// Auto-allocation space: 256 × 254 slots, one per address of 240.240.0.0/16 that is not
// the .0 or .255 of its /24.
const (
	slots = 256 * 254
	prime = 65011 // the largest prime below slots: the double-hashing step
)

// AutoAllocate gives each key (a ServiceEntry's "namespace/hostname") an address in
// 240.240.0.0/16, as Istio does for ServiceEntries without addresses when
// ISTIO_META_DNS_AUTO_ALLOCATE is on: the slot is the FNV-32a hash of the key, collisions are
// resolved by double hashing (Istio's autoAllocateIPs). Unlike Istio's, the address is a
// function of the slot alone: a ServiceEntry's address never moves because others come or
// go (Istio numbers the occupied slots in order, so one new entry can shift the next
// ones). The result depends only on the set of keys and, when two keys collide, on their
// order: pass them in a stable order (sorted) so that the addresses survive restarts of
// the control plane. A key listed twice gets one address.
//
// Callers pass only what Istio allocates for: no address set, not a wildcard host, and a
// resolution other than NONE.
func AutoAllocate(keys []string) map[string]netip.Addr {
	taken := make([]bool, slots)
	out := make(map[string]netip.Addr, len(keys))
	for _, k := range keys {
		if _, done := out[k]; done {
			continue
		}
		if len(out) == slots {
			break // full: the rest get no address
		}
		h := fnv.New32a()
		_, _ = h.Write([]byte(k))
		s := h.Sum32()
		slot := s % slots
		if taken[slot] {
			slot = probe(taken, s)
		}
		taken[slot] = true
		out[k] = netip.AddrFrom4([4]byte{240, 240, byte(slot / 254), byte(1 + slot%254)})
	}
	return out
}

// probe finds a free slot for hash s by double hashing; the probe sequence can cycle when
// the space is nearly full, then the first free slot is taken. There is one: the caller
// stops when all are taken.
func probe(taken []bool, s uint32) uint32 {
	step := prime - s%prime
	for i := uint32(1); i < slots; i++ {
		if slot := (s + i*step) % slots; !taken[slot] {
			return slot
		}
	}
	slot := uint32(0)
	for taken[slot] {
		slot++
	}
	return slot
}
