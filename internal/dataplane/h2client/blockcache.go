package h2client

import (
	"hash/maphash"
	"slices"

	"golang.org/x/net/http2/hpack"
)

// blockCache keeps a connection's recent response header blocks that decode the same
// whatever came before them and leave the HPACK decoder's dynamic table as it was:
// static-table references and literals not indexed, and, once the server has set the
// table's size to 0 (this client's SETTINGS ask for that), literals with indexing too
// (an entry larger than the table empties it: RFC 7541 §4.4). A server sends the same
// bytes for the same head: nginx's answers differ only in their Date, once a second. A
// block seen again is then emitted from the cache rather than decoded again (Huffman
// decoding and a string per literal, about 7 % of the proxy's CPU on h2c at saturation).
// A block is kept when it is seen a second time, so a server whose every head differs
// costs a hash per block and no copies. Fields a server marked never-indexed
// (credentials) make a block uncacheable. The reader goroutine's alone.
type blockCache struct {
	seed     maphash.Seed
	entries  [blockCacheEntries]cachedBlock
	next     int
	seen     [blockCacheEntries]uint64 // hashes of blocks decoded once and not kept
	nextSeen int
	// emptyTable: the server's size updates have set the decoder's dynamic table to size 0
	// (read from the start of every block decoded; a cached block has none). The zero
	// value is the decoder's start, a table of 4096 bytes.
	emptyTable bool
}

type cachedBlock struct {
	raw    string
	fields []hpack.HeaderField
}

const (
	blockCacheEntries = 4
	maxCachedBlock    = 1024 // bytes of an encoded block
	hpackStaticLen    = 61   // entries of the static table (RFC 7541 Appendix A)
)

// lookup returns the fields of block b if it is kept.
func (c *blockCache) lookup(b []byte) ([]hpack.HeaderField, bool) {
	for i := range c.entries {
		if e := &c.entries[i]; e.fields != nil && e.raw == string(b) {
			return e.fields, true
		}
	}
	return nil, false
}

// offer is given a block decoded (without error) into fields: it is kept if it decodes
// alone and was offered once before.
func (c *blockCache) offer(b []byte, fields []hpack.HeaderField) {
	if len(b) > maxCachedBlock || !tableFree(b, c.emptyTable) {
		return
	}
	if c.seed == (maphash.Seed{}) {
		c.seed = maphash.MakeSeed()
	}
	h := maphash.Bytes(c.seed, b)
	for i, s := range c.seen {
		if s == h {
			c.seen[i] = 0
			c.entries[c.next] = cachedBlock{raw: string(b), fields: slices.Clone(fields)}
			c.next = (c.next + 1) % blockCacheEntries
			return
		}
	}
	c.seen[c.nextSeen] = h
	c.nextSeen = (c.nextSeen + 1) % blockCacheEntries
}

// sawBlock reads the dynamic table size updates of a whole block the decoder has taken:
// the table's size is the last one's. They belong at a block's start (RFC 7541 §4.2), but
// the decoder also takes one further on while its table holds no entry, as it always does
// at size 0, so the whole block is read. Leaving or reaching size 0 forgets the kept
// blocks: literals with indexing left a table of size 0 as it was, and no other. A block
// this reading cannot follow to its end loses track (lostTrack).
func (c *blockCache) sawBlock(b []byte) {
	empty := c.emptyTable
	for len(b) > 0 {
		r, ok := nextField(b)
		if !ok {
			c.lostTrack()
			return
		}
		if r.kind == hpackUpdate {
			empty = r.idx == 0
		}
		b = r.rest
	}
	c.setEmpty(empty)
}

// lostTrack is for a block whose size updates were not all read (one cut into fragments,
// or one sawBlock could not follow): the table counts as not empty, the one state whose
// kept blocks do not depend on the table's size, until an update to 0 is seen again.
func (c *blockCache) lostTrack() { c.setEmpty(false) }

func (c *blockCache) setEmpty(empty bool) {
	if empty != c.emptyTable {
		c.emptyTable = empty
		c.entries, c.seen = [blockCacheEntries]cachedBlock{}, [blockCacheEntries]uint64{}
	}
}

// hpackField is one representation of a header block, as nextField reads it.
type hpackField struct {
	kind hpackKind
	// idx is an indexed field's index, a literal's name index (0: a literal name), an
	// update's table size.
	idx  uint64
	rest []byte // the block after it
}

// hpackKind is a representation's kind (RFC 7541 §6).
type hpackKind uint8

const (
	hpackIndexed      hpackKind = iota // 1xxxxxxx
	hpackIncremental                   // 01xxxxxx: a literal with incremental indexing
	hpackUpdate                        // 001xxxxx: a dynamic table size update
	hpackNeverIndexed                  // 0001xxxx
	hpackLiteral                       // 0000xxxx: a literal without indexing
)

// nextField reads the representation at the start of b (RFC 7541 §6), len(b) > 0; false
// when it is cut short.
func nextField(b []byte) (hpackField, bool) {
	c := b[0]
	var ok bool
	var r hpackField
	switch {
	case c&0x80 != 0:
		r.kind = hpackIndexed
		r.idx, r.rest, ok = hpackInt(b, 7)
		return r, ok
	case c&0xe0 == 0x20:
		r.kind = hpackUpdate
		r.idx, r.rest, ok = hpackInt(b, 5)
		return r, ok
	case c&0xc0 == 0x40:
		r.kind = hpackIncremental
		r.idx, b, ok = hpackInt(b, 6)
	case c&0xf0 == 0x10:
		r.kind = hpackNeverIndexed
		r.idx, b, ok = hpackInt(b, 4)
	default:
		r.kind = hpackLiteral
		r.idx, b, ok = hpackInt(b, 4)
	}
	if !ok {
		return r, false
	}
	if r.idx == 0 {
		if b, ok = skipHpackString(b); !ok {
			return r, false
		}
	}
	r.rest, ok = skipHpackString(b)
	return r, ok
}

// tableFree reports whether header block b decodes without the dynamic table and leaves
// it as it was (RFC 7541 §6): indexed fields of the static table, literals without
// indexing, and with emptyTable (a table of size 0) literals with indexing, each with its
// name literal or from the static table. A table size update, a reference to the dynamic
// table, a never-indexed literal or a representation cut short make it false.
func tableFree(b []byte, emptyTable bool) bool {
	for len(b) > 0 {
		r, ok := nextField(b)
		switch {
		case !ok || r.idx > hpackStaticLen || r.kind == hpackUpdate || r.kind == hpackNeverIndexed:
			return false
		case r.kind == hpackIndexed && r.idx == 0, r.kind == hpackIncremental && !emptyTable:
			return false
		}
		b = r.rest
	}
	return true
}

// hpackInt decodes an integer with an n-bit prefix (RFC 7541 §5.1); false when it is cut
// short or larger than a block could need.
func hpackInt(b []byte, n uint) (uint64, []byte, bool) {
	if len(b) == 0 {
		return 0, b, false
	}
	mask := uint64(1)<<n - 1
	v := uint64(b[0]) & mask
	b = b[1:]
	if v < mask {
		return v, b, true
	}
	for shift := uint(0); shift < 28; shift += 7 {
		if len(b) == 0 {
			return 0, b, false
		}
		c := b[0]
		b = b[1:]
		v += uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v, b, true
		}
	}
	return 0, b, false
}

// skipHpackString skips a string literal (RFC 7541 §5.2).
func skipHpackString(b []byte) ([]byte, bool) {
	n, b, ok := hpackInt(b, 7)
	if !ok || n > uint64(len(b)) {
		return b, false
	}
	return b[n:], true
}
