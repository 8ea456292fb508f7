// Package strslab makes short strings without an allocation each: the data plane's
// request and answer heads (h1server's downstream head, the pool's upstream head) and
// forward's request ids are copied into shared blocks of bytes that are never written
// again once handed out, and the strings point into them. A block is allocated when the
// current one is full, so a few dozen heads share one allocation; it is freed by the
// garbage collector once no string points into it.
//
// Because a byte is never written after a string covers it, a string from here is as
// immutable as any other Go string: it may be kept, stored in a map or outlive the
// request whose head it came from. The cost of keeping one is that it keeps its whole
// block (BlockSize) alive.
package strslab

import (
	"sync"
	"unsafe"
)

// BlockSize is the size of one shared block.
const BlockSize = 4 << 10

// MaxLen is the longest string copied into a block; a longer one gets its own allocation,
// so that one large head does not waste most of a block.
const MaxLen = 1 << 10

// block is the unused tail of a shared block: bytes no string covers yet.
type block struct{ free []byte }

// blocks holds the blocks with room left, one per processor at a time.
var blocks = sync.Pool{New: func() any { return new(block) }}

// String returns a string holding a copy of b.
func String(b []byte) string {
	n := len(b)
	if n == 0 {
		return ""
	}
	if n > MaxLen {
		return string(b)
	}
	bl := blocks.Get().(*block)
	if len(bl.free) < n {
		bl.free = make([]byte, BlockSize)
	}
	copy(bl.free, b)
	s := unsafe.String(&bl.free[0], n) //nolint:gosec // n > 0 bytes of the block that nothing writes again
	// The bytes just handed out leave the block for good: nothing below writes them again.
	bl.free = bl.free[n:len(bl.free):len(bl.free)]
	blocks.Put(bl)
	return s
}
