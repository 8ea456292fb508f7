package ads

import (
	"crypto/sha256"
	"runtime"
	"slices"
	"sync"
	"weak"
)

// nameSet is a watch's subscribed names. Streams that subscribe to the same names share
// one nameSet (a thousand sidecars of one kind name the same endpoints): one copy in
// memory, and the lookups every push makes for every stream hit the same cache lines
// instead of a thousand maps. A nameSet is never modified once interned; a change of
// subscription makes a new one.
type nameSet struct {
	m map[string]bool
}

var emptyNames = &nameSet{m: map[string]bool{}}

func (n *nameSet) has(name string) bool { return n.m[name] }

func (n *nameSet) len() int { return len(n.m) }

// with is n with add added and drop removed, interned; n itself when nothing changes.
func (n *nameSet) with(in *nameInterner, add, drop []string) *nameSet {
	changed := false
	for _, a := range add {
		changed = changed || !n.m[a]
	}
	for _, d := range drop {
		changed = changed || n.m[d]
	}
	if !changed {
		return n
	}
	m := make(map[string]bool, len(n.m)+len(add))
	for k := range n.m {
		m[k] = true
	}
	for _, a := range add {
		m[a] = true
	}
	for _, d := range drop {
		delete(m, d)
	}
	return in.intern(m)
}

// sameNames reports whether n holds exactly m's names.
func sameNames(n *nameSet, m map[string]bool) bool {
	if n.len() != len(m) {
		return false
	}
	for k := range m {
		if !n.m[k] {
			return false
		}
	}
	return true
}

// nameInterner keeps one nameSet per distinct set of names, for as long as a watch uses
// it (weak references: a set nobody subscribes to any more is collected and forgotten).
type nameInterner struct {
	mu   sync.Mutex
	sets map[[32]byte]weak.Pointer[nameSet]
}

// intern returns the shared nameSet with exactly m's names (m is kept if it becomes the
// shared one and must not be modified afterwards).
func (in *nameInterner) intern(m map[string]bool) *nameSet {
	if len(m) == 0 {
		return emptyNames
	}
	key := namesKey(m)
	in.mu.Lock()
	defer in.mu.Unlock()
	if wp, ok := in.sets[key]; ok {
		if n := wp.Value(); n != nil {
			return n
		}
	}
	if in.sets == nil {
		in.sets = map[[32]byte]weak.Pointer[nameSet]{}
	}
	n := &nameSet{m: m}
	wp := weak.Make(n)
	in.sets[key] = wp
	runtime.AddCleanup(n, func(key [32]byte) {
		in.mu.Lock()
		defer in.mu.Unlock()
		if cur, ok := in.sets[key]; ok && cur == wp {
			delete(in.sets, key)
		}
	}, key)
	return n
}

// namesKey identifies a set of names (SHA-256 over the sorted names, each ended by a 0).
func namesKey(m map[string]bool) [32]byte {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	h := sha256.New()
	for _, n := range names {
		h.Write([]byte(n))
		h.Write([]byte{0})
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}
