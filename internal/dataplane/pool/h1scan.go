package pool

import (
	"bytes"
	"encoding/binary"
	"math/bits"

	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
)

// The plain reader's scanner (h1read.go): it walks each field line of an answer head once,
// from its name to its CRLF, instead of finding the line's end, then its colon, then
// checking the name, trimming the value and checking the value, each a pass of its own.
// What it accepts is what those passes accepted: a name of token bytes (http1.ValidName)
// ending at a colon, a value of the bytes http1.ValidValue takes, a CR only right before
// the LF that ends the line.

// Word constants of the eight-bytes-at-a-time tests: a one and a high bit in every byte.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// nameWord classifies the eight name bytes of x (the first in its low byte) for
// scanFields, as a high bit in each byte: stop marks the bytes that are not a letter, a
// digit or a hyphen (the first one should be the colon), wrong the letters whose case is
// not the canonical one, and hyphen the hyphens. start marks the bytes whose letter must
// be upper case: the first of a name, and byte 0 when the word before ended with a hyphen.
// Each class is a range test on the bytes' low seven bits, whose sums cannot carry into
// the next byte.
func nameWord(x, start uint64) (stop, wrong, hyphen uint64) {
	v := x &^ highs
	lw := v | 0x20*ones // letters in lower case
	letter := (lw + (0x80-'a')*ones) &^ (lw + (0x80-'z'-1)*ones)
	digit := (v + (0x80-'0')*ones) &^ (v + (0x80-'9'-1)*ones)
	hyphen = ^((v ^ '-'*ones) + 0x7f*ones) & highs
	stop = (^(letter | digit | hyphen) | x) & highs // | x: a byte from 0x80 is no token byte
	// A letter is upper case where its 0x20 bit (shifted into the high bit) is clear; it
	// must be where start or a hyphen before it says so.
	wrong = letter &^ (v<<2 ^ (start | hyphen<<8)) & highs
	return stop, wrong, hyphen
}

// nameEndBytes reads the field name that starts at off a byte at a time, as
// http1.NameForm reads a name: it returns the index of the colon after it, and whether the
// name is in net/textproto's canonical form; colon is -1 when the name is empty or a byte
// before the colon is not a token byte (a space before the colon, a folded line's leading
// space, a CR), or buf ends first. scanFields reads most names eight bytes at a time, and
// this way those it cannot.
func nameEndBytes(buf []byte, off int) (colon int, canonical bool) {
	i := bytes.IndexByte(buf[off:], ':')
	if i <= 0 {
		return -1, false
	}
	token, canonical := http1.NameForm(buf[off : off+i])
	if !token {
		return -1, false
	}
	return off + i, canonical
}

// valueEnd is the index of the CR that ends the line when every byte from i to it may be
// in a field value (http1.ValidValue: no control byte but HTAB, no DEL) and an LF follows
// it; -1 otherwise: a control byte, DEL, a lone CR, a bare LF, or buf ends first. It tests
// eight bytes at a time as ValidValue does, and stops at the first byte that is below SP
// or DEL: the lowest byte the word test marks is always such a byte (a borrow only marks
// bytes above a true one), so a tab is stepped over and the word tested again after it.
func valueEnd(buf []byte, i int) int {
	for {
		if len(buf)-i >= 8 {
			m := ctlBytes(binary.LittleEndian.Uint64(buf[i : i+8]))
			if m == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(m) >> 3
		} else {
			for i < len(buf) && buf[i] >= ' ' && buf[i] != 0x7f {
				i++
			}
			if i >= len(buf) {
				return -1
			}
		}
		switch buf[i] {
		case '\t':
			i++
			continue
		case '\r':
			if i+1 < len(buf) && buf[i+1] == '\n' {
				return i
			}
		}
		return -1
	}
}

// ctlBytes marks, with their high bit, the bytes of x below SP and the DELs; exact as a
// whole, and its lowest mark is exact (a borrow only marks bytes above a true one).
func ctlBytes(x uint64) uint64 {
	y := x ^ 0x7f*ones // a DEL becomes a zero byte
	return ((x-0x20*ones)&^x | (y-ones)&^y) & highs
}

// scanFields reads the field lines of a head from off (after the status line) to the
// empty line, for parsePlainHead: it appends where each field is to spans, and returns
// them, the Content-Length and the index after the empty line; end is -1 when the head is
// not plain (see parsePlainHead) or not all in buf.
func scanFields(buf []byte, off int, spans []http1.FieldSpan) (_ []http1.FieldSpan, length int64, end int) {
	length = -1
	for {
		if off < len(buf) && buf[off] == '\r' {
			if off+1 >= len(buf) || buf[off+1] != '\n' || length < 0 {
				return spans, 0, -1 // a lone CR, or a body delimited by the connection's end
			}
			return spans, length, off + 2
		}
		// Most names are letters, digits and hyphens, read eight bytes at a time up to the
		// first byte that is none of these; a name with another token byte ('_', '.'), or
		// too near the end of buf for a word, is read again a byte at a time.
		colon, canonical := -1, false
		for i, start, bad := off, uint64(0x80), uint64(0); len(buf)-i >= 8; i += 8 {
			stop, wrong, hyphen := nameWord(binary.LittleEndian.Uint64(buf[i:]), start)
			if stop == 0 {
				bad |= wrong
				start = hyphen >> 56
				continue
			}
			n := bits.TrailingZeros64(stop) >> 3
			if buf[i+n] == ':' && i+n > off {
				colon, canonical = i+n, bad|wrong&(1<<(8*n)-1) == 0
			}
			break
		}
		if colon < 0 {
			if colon, canonical = nameEndBytes(buf, off); colon < 0 {
				return spans, 0, -1 // not all there yet, a bad name, a folded line
			}
		}
		vs := colon + 1
		for vs < len(buf) && isOWS(buf[vs]) {
			vs++
		}
		e := valueEnd(buf, vs)
		if e < 0 {
			return spans, 0, -1
		}
		ve := e
		for ve > vs && isOWS(buf[ve-1]) {
			ve--
		}
		// The fields that decide the framing, in any case (the names are tokens: ASCII);
		// most names have none of their lengths.
		switch colon - off {
		case len("Content-Length"):
			if !http1.EqualFoldASCII(buf[off:colon], "Content-Length") {
				break
			}
			n, ok := http1.ParseLength(buf[vs:ve])
			if !ok || length >= 0 {
				return spans, 0, -1
			}
			length = n
		case len("Connection"):
			// "keep-alive" changes nothing in HTTP/1.1: the field describes the pool's
			// own connection, and is not passed on as one of the answer's fields (every
			// proxy would only remove it). Any other option ("close", a field to remove)
			// goes to net/http.
			if http1.EqualFoldASCII(buf[off:colon], "Connection") {
				if !http1.EqualFoldASCII(buf[vs:ve], "keep-alive") {
					return spans, 0, -1
				}
				off = e + 2
				continue
			}
		case len("Transfer-Encoding"), len("Trailer"), len("Pragma"):
			if name := buf[off:colon]; http1.EqualFoldASCII(name, "Transfer-Encoding") ||
				http1.EqualFoldASCII(name, "Trailer") || http1.EqualFoldASCII(name, "Pragma") {
				return spans, 0, -1
			}
		}
		spans = append(spans, http1.FieldSpan{Start: int32(off), Colon: int32(colon), ValueStart: int32(vs), ValueEnd: int32(ve), Canonical: canonical})
		off = e + 2
	}
}

// isOWS says whether c is optional whitespace around a field value (SP or HTAB).
func isOWS(c byte) bool { return c == ' ' || c == '\t' }
