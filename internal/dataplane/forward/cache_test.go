package forward

import (
	"strconv"
	"testing"
)

// A readCache keeps what it is given until it is full, then starts again: a proxy that
// meets ever new keys holds at most readCacheMax of them.
func TestReadCacheBounded(t *testing.T) {
	var c readCache[int]
	for i := range readCacheMax {
		c.put(strconv.Itoa(i), i)
	}
	if v, ok := c.get("7"); !ok || v != 7 {
		t.Fatalf("get(7) = %d, %v before the cache was full", v, ok)
	}
	c.put("new", -1) // full: cleared first
	if _, ok := c.get("7"); ok {
		t.Error("an old key survived the clearing")
	}
	if v, ok := c.get("new"); !ok || v != -1 || len(c.m) != 1 {
		t.Errorf("get(new) = %d, %v with %d kept, want -1, true, 1", v, ok, len(c.m))
	}
}
