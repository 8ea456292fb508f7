package forward

import "sync"

// readCache is a bounded map from strings to values worked out once and then read on
// every request (decoded peer metadata, loop tokens): reads share a read lock and make no
// allocation; a write that finds it full clears it first.
type readCache[V any] struct {
	mu sync.RWMutex
	m  map[string]V
}

// readCacheMax bounds a readCache: the keys a proxy meets (workloads, listeners) are few.
const readCacheMax = 1024

func (c *readCache[V]) get(k string) (V, bool) {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	return v, ok
}

// put keeps v under k. k must not share memory a request will reuse (a string cut from a
// request's head: clone it first).
func (c *readCache[V]) put(k string, v V) {
	c.mu.Lock()
	if c.m == nil || len(c.m) >= readCacheMax {
		c.m = make(map[string]V, 16)
	}
	c.m[k] = v
	c.mu.Unlock()
}
