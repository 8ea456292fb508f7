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

import (
	"bytes"
	"strconv"
)

// Encoder appends header fields to its buffer. One per connection, used by one writer at
// a time (the connection's write lock).
type Encoder struct {
	buf     *bytes.Buffer
	updated bool // the size update to 0 was sent
}

// New returns an encoder that writes to buf.
func New(buf *bytes.Buffer) *Encoder { return &Encoder{buf: buf} }

// Begin starts a header block (the caller has reset the buffer). On the connection's
// first block it writes the dynamic table size update, which must come first.
func (e *Encoder) Begin() {
	if !e.updated {
		e.updated = true
		e.buf.WriteByte(0x20) // 001xxxxx: dynamic table size update, 0
	}
}

// WriteField appends one field; name is lowercase (HTTP/2's form). Begin must have
// started the block.
func (e *Encoder) WriteField(name, value string) {
	if i := staticField(name, value); i > 0 {
		e.buf.WriteByte(0x80 | byte(i)) // 1xxxxxxx: indexed field
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
		e.buf.WriteString(p)
	}
}

// WriteFieldInt appends one field whose value is v in decimal (content-length), as a
// literal, without making the number's string.
func (e *Encoder) WriteFieldInt(name string, v int64) {
	var d [20]byte
	digits := strconv.AppendInt(d[:0], v, 10)
	e.literalName(name)
	e.writeInt(7, uint64(len(digits)))
	e.buf.Write(digits)
}

// literalName starts a literal field without indexing: 0000xxxx with the name's static
// index, or 0 and the name as a string.
func (e *Encoder) literalName(name string) {
	if i := staticName(name); i > 0 {
		e.writeInt(4, uint64(i))
		return
	}
	e.buf.WriteByte(0x00)
	e.writeString(name)
}

// writeString appends an HPACK string literal as it is. Huffman coding would save about a
// fifth of the bytes of these strings and cost as much CPU again as the rest of the
// encoding (and the peer's decoder the same to undo it); header bytes are a small part of
// what a request sends.
func (e *Encoder) writeString(s string) {
	e.writeInt(7, uint64(len(s)))
	e.buf.WriteString(s)
}

// writeInt appends v with an n-bit prefix whose high bits are zero (the literal-field and
// plain-string patterns this encoder writes).
func (e *Encoder) writeInt(n uint, v uint64) {
	if v < uint64(1)<<n-1 { // one byte: most lengths and indexes
		_ = e.buf.WriteByte(byte(v))
		return
	}
	var b [10]byte
	e.buf.Write(appendInt(b[:0], n, v))
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
