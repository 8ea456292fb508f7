package bufpool

import (
	"net/http"
	"strconv"
	"testing"
)

// Get picks the capacity by the announced length; Put keeps only buffers of the pool's
// three capacities, reset to length 0.
func TestSized(t *testing.T) {
	s := NewSized(16 << 10)
	for _, c := range []struct {
		announced int64
		want      int
	}{{0, Tiny}, {Tiny, Tiny}, {Tiny + 1, Small}, {Small, Small}, {Small + 1, 16 << 10}, {-1, 16 << 10}} {
		b := s.Get(c.announced)
		if len(*b) != 0 || cap(*b) != c.want {
			t.Errorf("Get(%d): len %d cap %d, want len 0 cap %d", c.announced, len(*b), cap(*b), c.want)
		}
		*b = append(*b, "bytes"...)
		s.Put(b)
	}
	// A returned buffer comes back empty (sync.Pool may also hand out a new one).
	for _, n := range []int64{10, 2000, -1} {
		if b := s.Get(n); len(*b) != 0 {
			t.Fatalf("a buffer came back with %d bytes in it", len(*b))
		}
	}
	grown := make([]byte, 0, 3*Small)
	s.Put(&grown) // dropped: not one of the pool's capacities
	for range 100 {
		if b := s.Get(-1); cap(*b) != 16<<10 {
			t.Fatalf("a buffer of capacity %d came out of the large pool", cap(*b))
		}
	}
}

// EmptyHeader empties a map of a usual size for reuse and lets a larger one go.
func TestEmptyHeader(t *testing.T) {
	h := http.Header{"A": {"1"}, "B": {"2"}}
	if got := EmptyHeader(h); got == nil || len(got) != 0 || len(h) != 0 {
		t.Fatalf("EmptyHeader of 2 fields = %v (the map now %v), want the same map, empty", got, h)
	}
	big := http.Header{}
	for i := range KeptFieldsMax + 1 {
		big[strconv.Itoa(i)] = nil
	}
	if got := EmptyHeader(big); got != nil {
		t.Fatalf("EmptyHeader of %d fields kept the map", len(big))
	}
	if EmptyHeader(nil) != nil {
		t.Fatal("EmptyHeader(nil) is not nil")
	}
}
