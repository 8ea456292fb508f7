package http1

import (
	"bytes"
	"encoding/binary"
	"math/bits"
)

// The field-line scanner both HTTP/1.1 head parsers run on every field line: this
// package's request head check (parseHead) and the pool's reader of upstream answer heads.
// It walks a line once, from its name to its CRLF, instead of finding the line's end,
// then its colon, then checking the name, trimming the value and checking the value, each
// a pass of its own. What it accepts is what those passes accept (parseField): a name of
// token bytes (ValidName) ending at a colon, a value of the bytes ValidValue takes, a CR
// only right before the LF that ends the line.

// ScanField reads the field line that starts at off in buf (off <= len(buf)): a name
// directly followed by its colon, then the value up to the CRLF that ends the line. It
// returns the index of the colon, the value's bounds without the spaces and tabs around it
// ([vs, ve)), the index of the line's CR (the next line starts at cr+2), and whether the
// name is in net/textproto's canonical form (NameForm). ok is false, and the rest zero,
// when the line is not a field line: an empty name, a byte before the colon that is not a
// token byte (a space, a folded line's leading whitespace, a CR, so also the empty line
// that ends a head), no colon, a control byte other than HTAB or a DEL in the value, a CR
// not followed by LF, a bare LF, or buf ending before the CRLF. A parser that has to say
// why a line is refused reads it again its own way.
func ScanField(buf []byte, off int) (colon, vs, ve, cr int, canonical, ok bool) {
	// Most names are letters, digits and hyphens, read eight bytes at a time up to the
	// first byte that is none of these; a name with another token byte ('_', '.'), or too
	// near the end of buf for a word, is read again a byte at a time.
	colon = -1
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
			return 0, 0, 0, 0, false, false
		}
	}
	vs = colon + 1
	for vs < len(buf) && (buf[vs] == ' ' || buf[vs] == '\t') {
		vs++
	}
	if cr = ValueEnd(buf, vs); cr < 0 {
		return 0, 0, 0, 0, false, false
	}
	ve = cr
	for ve > vs && (buf[ve-1] == ' ' || buf[ve-1] == '\t') {
		ve--
	}
	return colon, vs, ve, cr, canonical, true
}

// Word constants of the eight-bytes-at-a-time tests: a one and a high bit in every byte.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// nameWord classifies the eight name bytes of x (the first in its low byte) for
// ScanField, as a high bit in each byte: stop marks the bytes that are not a letter, a
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

// nameEndBytes reads the field name that starts at off as NameForm reads a name: it
// returns the index of the colon after it, and whether the name is in canonical form;
// colon is -1 when the name is empty or a byte before the colon is not a token byte (a
// space before the colon, a folded line's leading space, a CR), or buf ends first.
// ScanField reads most names eight bytes at a time, and this way those it cannot.
func nameEndBytes(buf []byte, off int) (colon int, canonical bool) {
	i := bytes.IndexByte(buf[off:], ':')
	if i <= 0 {
		return -1, false
	}
	token, canonical := NameForm(buf[off : off+i])
	if !token {
		return -1, false
	}
	return off + i, canonical
}

// ValueEnd is the index of the CR that ends the line when every byte from i to it may be
// in a field value (ValidValue: no control byte but HTAB, no DEL) and an LF follows it;
// -1 otherwise: a control byte, DEL, a lone CR, a bare LF, or buf ends first. ScanField
// reads a value with it; the pool's answer reader reads a status line with it (the
// status's digits and reason phrase are such bytes). It tests eight bytes at a time as
// ValidValue does, and stops at the first byte that is below SP or DEL: the lowest byte
// the word test marks is always such a byte (a borrow only marks bytes above a true one),
// so a tab is stepped over and the word tested again after it.
func ValueEnd(buf []byte, i int) int {
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
