// Package hpackenc encodes HTTP/2 header blocks (RFC 7541) without the dynamic table. It
// sits in the data plane's HTTP/2 writers: the server (h2server) encodes response heads
// and trailers with it, the client (h2client) request heads and trailers.
//
// An HPACK encoder that indexes fields keeps a dynamic table and looks every field up in
// it: two hash lookups per field, an insertion, and evictions as per-request values (ids,
// dates, lengths) push older entries out, which made the encoder about a twentieth of a
// proxy's CPU per HTTP/2 request. This encoder never indexes. A field the static table
// has whole (":method GET", ":status 200") is its index, one byte; any other field is a
// literal without indexing, its name by static index when the table has the name, the
// strings as they are (not Huffman-coded). A connection's first block opens with a
// dynamic table size update to 0, so the peer's decoder keeps no table for it whatever
// SETTINGS_HEADER_TABLE_SIZE says later. Blocks are a little larger than an indexing
// encoder's for fields repeated on every request of a connection; the encoding is valid
// for any decoder.
package hpackenc

import "strconv"

// Encoder appends header fields to its block, a slice of its own that the next block
// reuses (appends, inlined, rather than a bytes.Buffer's calls: a block is written a few
// bytes at a time). One per connection, used by one writer at a time (the connection's
// write lock).
type Encoder struct {
	buf     []byte
	updated bool // the size update to 0 was sent
}

// New returns an encoder.
func New() *Encoder { return &Encoder{} }

// Begin starts a header block, dropping the last one. On the connection's first block it
// writes the dynamic table size update, which must come first.
func (e *Encoder) Begin() {
	e.buf = e.buf[:0]
	if !e.updated {
		e.updated = true
		e.buf = append(e.buf, 0x20) // 001xxxxx: dynamic table size update, 0
	}
}

// Bytes is the block begun last, valid until the next Begin.
func (e *Encoder) Bytes() []byte { return e.buf }

// WriteField appends one field; name is lowercase (HTTP/2's form). Begin must have
// started the block.
func (e *Encoder) WriteField(name, value string) {
	if i := staticField(name, value); i > 0 {
		e.buf = append(e.buf, 0x80|byte(i)) // 1xxxxxxx: indexed field
		return
	}
	e.literalName(name)
	e.writeString(value)
}

// WriteFieldParts appends one field whose value is the parts joined (":path" from a path
// and its query, without making the joined string), as a literal: what WriteField writes
// for a value without a static entry of its own.
func (e *Encoder) WriteFieldParts(name string, parts ...string) {
	e.literalName(name)
	total := 0
	for _, p := range parts {
		total += len(p)
	}
	e.writeInt(7, uint64(total))
	for _, p := range parts {
		e.buf = append(e.buf, p...)
	}
}

// WriteFieldInt appends one field whose value is v in decimal (content-length), as a
// literal, without making the number's string.
func (e *Encoder) WriteFieldInt(name string, v int64) {
	var d [20]byte
	digits := strconv.AppendInt(d[:0], v, 10)
	e.literalName(name)
	e.writeInt(7, uint64(len(digits)))
	e.buf = append(e.buf, digits...)
}

// literalName starts a literal field without indexing: 0000xxxx with the name's static
// index, or 0 and the name as a string.
func (e *Encoder) literalName(name string) {
	if i := staticName(name); i > 0 {
		e.writeInt(4, uint64(i))
		return
	}
	e.buf = append(e.buf, 0x00)
	e.writeString(name)
}

// writeString appends an HPACK string literal as it is. Huffman coding would save about a
// fifth of the bytes of these strings and cost as much CPU again as the rest of the
// encoding (and the peer's decoder the same to undo it); header bytes are a small part of
// what a request sends.
func (e *Encoder) writeString(s string) {
	e.writeInt(7, uint64(len(s)))
	e.buf = append(e.buf, s...)
}

// writeInt appends v with an n-bit prefix whose high bits are zero (the literal-field and
// plain-string patterns this encoder writes).
func (e *Encoder) writeInt(n uint, v uint64) {
	if v < uint64(1)<<n-1 { // one byte: most lengths and indexes
		e.buf = append(e.buf, byte(v))
		return
	}
	e.buf = appendInt(e.buf, n, v)
}

// appendInt appends v as an HPACK integer with an n-bit prefix (RFC 7541 §5.1), the
// prefix byte's high bits zero.
func appendInt(b []byte, n uint, v uint64) []byte {
	limit := uint64(1)<<n - 1
	if v < limit {
		return append(b, byte(v))
	}
	b = append(b, byte(limit))
	v -= limit
	for v >= 128 {
		b = append(b, byte(v&0x7f|0x80))
		v >>= 7
	}
	return append(b, byte(v))
}
