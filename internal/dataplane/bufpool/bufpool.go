// Package bufpool keeps the data plane's body buffers for reuse: the buffers forward
// copies answers and tunnels with, h2server keeps a response (and a request body) in,
// and h2client keeps received answer bytes in until they are read. It also holds the one
// rule for keeping a header map for reuse (EmptyHeader), which forward's upstream
// requests and the pool's and h2client's recycled answers follow.
//
// Each user has a Sized pool of three capacities: Tiny and Small, for a body whose
// announced length fits them, and its own large size for the rest. sync.Pool empties at
// every GC, and under load every request in flight then allocates its buffer again; most
// answers are small, so taking a small buffer for them keeps that garbage small (for h2c,
// 4.5 MiB less RSS at load than 8 and 16 KiB buffers for every answer). The pools hold
// about one buffer per stream in flight, so the tiny class matters too: a 1 KiB answer in
// a 4 KiB buffer kept 3 KiB idle per stream (0.5 MB of h2client's at h2c saturation).
package bufpool

import (
	"net/http"
	"sync"
)

// Tiny and Small are the capacities of the buffers for bodies announced at most that long.
const (
	Tiny  = 1 << 10
	Small = 4 << 10
)

// Sized is buffers of three capacities, Tiny, Small and a large one. Safe for concurrent
// use.
type Sized struct {
	large                int
	tinies, smalls, bigs sync.Pool
}

// NewSized returns a pool whose large buffers hold large bytes (more than Small).
func NewSized(large int) *Sized {
	s := &Sized{large: large}
	s.tinies.New = func() any { b := make([]byte, 0, Tiny); return &b }
	s.smalls.New = func() any { b := make([]byte, 0, Small); return &b }
	s.bigs.New = func() any { b := make([]byte, 0, large); return &b }
	return s
}

// Get returns a buffer of length 0: of the smallest capacity, Tiny or Small, that holds
// the body it is for when that is announced (announced >= 0), else of the large capacity.
func (s *Sized) Get(announced int64) *[]byte {
	switch {
	case announced < 0 || announced > Small:
		return s.bigs.Get().(*[]byte)
	case announced <= Tiny:
		return s.tinies.Get().(*[]byte)
	default:
		return s.smalls.Get().(*[]byte)
	}
}

// Put takes b back, its length reset, when its capacity is one of the pool's; a buffer
// grown past it (or not from the pool) is left to the GC.
func (s *Sized) Put(b *[]byte) {
	var p *sync.Pool
	switch cap(*b) {
	case Tiny:
		p = &s.tinies
	case Small:
		p = &s.smalls
	case s.large:
		p = &s.bigs
	default:
		return
	}
	*b = (*b)[:0]
	p.Put(b)
}

// KeptFieldsMax is the most fields a header map may hold to be kept for reuse: emptying a
// map costs as much as the most it ever held, so an exceptional request's or answer's map
// is left to the GC rather than emptied again at every reuse.
const KeptFieldsMax = 32

// EmptyHeader returns h emptied, to be filled again by a later request or answer; nil when
// it holds more than KeptFieldsMax fields.
func EmptyHeader(h http.Header) http.Header {
	if len(h) > KeptFieldsMax {
		return nil
	}
	clear(h)
	return h
}
