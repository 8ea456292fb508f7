// Package strslab makes short strings without an allocation each: the data plane's
// request and answer heads (h1server's downstream head, the pool's upstream head) and
// forward's request ids are copied into shared blocks of bytes that are never written
// again once handed out, and the strings point into them. A block is allocated when the
// current one is full, so a few dozen heads share one allocation; it is freed by the
// garbage collector once no string points into it.
//
// A connection's heads mostly repeat the lines of the one before (Host, a client's own
// fields, a server's Server and Content-Type), so h1server and the pool make a head's
// strings through a Recall, which gives a line the string made for the same bytes in the
// same place last time and copies only the lines that differ, into arenas of its own. The
// copies are most of what the data plane allocates, and the garbage collector's work
// grows with them.
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
	if len(b) == 0 {
		return ""
	}
	if len(b) > MaxLen {
		return string(b)
	}
	bl := blocks.Get().(*block)
	s := bl.string(b)
	blocks.Put(bl)
	return s
}

// string copies b (0 < len(b) <= MaxLen) into the block's free bytes, a new block's when
// they are too few.
func (bl *block) string(b []byte) string {
	n := len(b)
	if len(bl.free) < n {
		bl.free = make([]byte, BlockSize)
	}
	copy(bl.free, b)
	s := unsafe.String(&bl.free[0], n) //nolint:gosec // n > 0 bytes of the block that nothing writes again
	// The bytes just handed out leave the block for good: nothing below writes them again.
	bl.free = bl.free[n:len(bl.free):len(bl.free)]
	return s
}

// RecallLines is how many lines a Recall keeps: a head's first line and 16 field lines.
const RecallLines = 17

// A Recall keeps the strings made for one connection's last head, one per line by its
// place in the head, so that a line of the next head with the same bytes gets the same
// string instead of a copy. A connection's heads repeat most of their lines (Host, the
// client's own fields, a server's Server and Content-Type); what differs from one
// request to the next (an id, a trace context, a path) is all that is copied. Copies are
// garbage once nothing points to them, and the collector's work grows with how much of it
// the proxy makes: heads copied whole were most of what the data plane allocated.
//
// The copies go into arenas of the Recall's own, not the shared blocks: a kept string
// keeps its arena alive, and the lines of one connection's heads kept in the shared
// blocks would keep as many blocks of other connections' bytes alive. The first arena
// holds the first head and 128 bytes more (a connection of one request makes little
// garbage), a later one twice a head (256 bytes to 4 KiB). When one fills, the Recall
// forgets its lines and starts the next, so the lines it keeps are always in one arena: a
// connection keeps that one alive between its requests, no more than twice its head (or
// the head and 128 bytes). The zero value is ready; one goroutine at a time.
type Recall struct {
	lines [RecallLines]string
	arena []byte // the current arena's free bytes
}

// Line returns a string holding b's bytes, a line of a head of head bytes: the one kept
// at place i when it has the same bytes, else a copy, which place i then keeps.
// i < RecallLines.
func (r *Recall) Line(i int, b []byte, head int) string {
	if s := r.lines[i]; len(s) == len(b) && s == string(b) {
		return s
	}
	if len(b) == 0 {
		r.lines[i] = ""
		return ""
	}
	if len(r.arena) < len(b) {
		size := head + 128 // the first: the head's lines, and room for a few to change
		if r.arena != nil {
			size = min(max(2*head, 256), 4<<10)
			r.lines = [RecallLines]string{} // the older arena goes once the caller's strings do
		}
		r.arena = make([]byte, max(size, len(b)))
	}
	n := copy(r.arena, b)
	s := unsafe.String(&r.arena[0], n) //nolint:gosec // n > 0 bytes of the arena that nothing writes again
	r.arena = r.arena[n:len(r.arena):len(r.arena)]
	r.lines[i] = s
	return s
}
