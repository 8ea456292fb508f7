package http1

import (
	"bytes"
	"encoding/binary"
	"net/http"
	"strings"
	"unsafe"

	"golang.org/x/net/http/httpguts"
)

// Value is h.Get(key) for a key already in canonical form (a constant such as
// "Content-Type"): the first value, or "". It skips the canonicalization Get runs on
// every call, which the proxy's per-request lookups would pay each time.
func Value(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Regroup rebuilds h after a parser set each field's value alone under its key without
// looking first (h[k] = vals[i:i+1:i+1]), when that left h with fewer keys than fields:
// a name came more than once and its last value won. Every value then goes under its
// key, in the order received. key(i) is field i's key, "" for a field kept out of the
// map; vals[i] its value.
func Regroup(h http.Header, vals []string, key func(i int) string) {
	clear(h)
	for i := range vals {
		switch k := key(i); {
		case k == "":
		case h[k] != nil:
			h[k] = append(h[k], vals[i])
		default:
			h[k] = vals[i : i+1 : i+1]
		}
	}
}

// NameForm says whether name is a field name (a token, RFC 9110 §5.1) and whether it is
// already in the canonical form net/textproto gives header keys ("Content-Type": the first
// letter and every letter after a hyphen upper case, the others lower case), in one pass.
// A parser that finds both can use the received bytes as the map key as they are.
func NameForm(name []byte) (token, canonical bool) {
	// One table lookup per byte and no branch: every byte's class is and-ed (all token
	// bytes?) and the case it must not have where it stands or-ed.
	all, wrong, bad := uint8(nameToken), uint8(nameLower), uint8(0) // the first letter: upper case
	for _, c := range name {
		t := nameClass[c]
		all &= t
		bad |= t & wrong
		wrong = t >> 3
	}
	if all&nameToken == 0 || len(name) == 0 {
		return false, false
	}
	return true, bad == 0
}

// The bits of nameClass: a token byte, a lower- and an upper-case letter; shifted left by
// 3, the case a letter right after the byte must not have (after a hyphen lower case, else
// upper case).
const (
	nameToken = 1 << iota
	nameLower
	nameUpper
)

var nameClass = func() (t [256]uint8) {
	for c := range 256 {
		if tokenByte[c] {
			t[c] |= nameToken
		}
		switch {
		case 'a' <= c && c <= 'z':
			t[c] |= nameLower
		case 'A' <= c && c <= 'Z':
			t[c] |= nameUpper
		}
		if c == '-' {
			t[c] |= nameLower << 3
		} else {
			t[c] |= nameUpper << 3
		}
	}
	return t
}()

// tokenByte: the bytes a token may hold (tchar, RFC 9110 §5.6.2).
var tokenByte = func() (t [256]bool) {
	for c := range 128 {
		t[c] = httpguts.IsTokenRune(rune(c))
	}
	return t
}()

// ValidName says whether name is a field name (a token), as httpguts.ValidHeaderFieldName
// does, a byte at a time.
func ValidName[B ~string | ~[]byte](name B) bool {
	for i := 0; i < len(name); i++ {
		if !tokenByte[name[i]] {
			return false
		}
	}
	return len(name) > 0
}

// ValidValue says whether b may be a field value as received: no control byte but HTAB
// (no CR, LF or NUL), no DEL; visible ASCII, SP and obs-text (bytes from 0x80) are fine.
// It is what net/http's readers and Envoy's codec accept, and is checked on every value
// of every head, so it tests eight bytes at a time and looks at single bytes only in a
// word that has a byte below SP or a DEL (a tab, usually) and at the tail.
func ValidValue(b []byte) bool {
	for len(b) >= 8 {
		// Some byte below SP or a DEL (ctlBytes is exact as a whole): the word is then
		// looked at a byte at a time.
		if ctlBytes(binary.LittleEndian.Uint64(b)) != 0 && !validValueBytes(b[:8]) {
			return false
		}
		b = b[8:]
	}
	return validValueBytes(b)
}

// ValidValueString is ValidValue of s, read where it lies.
func ValidValueString(s string) bool {
	return ValidValue(unsafe.Slice(unsafe.StringData(s), len(s))) //nolint:gosec // read, never written
}

// validValueBytes is ValidValue a byte at a time.
func validValueBytes(b []byte) bool {
	for _, c := range b {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// TrimOWS is b without the spaces and tabs around it (a field value's optional
// whitespace).
func TrimOWS(b []byte) []byte {
	s, e := OWSBounds(b, 0, len(b))
	return b[s:e]
}

// OWSBounds are the bounds of b[lo:hi] without the spaces and tabs around it, as indexes
// of b: for a parser that cuts the value out of another copy of the same bytes.
func OWSBounds(b []byte, lo, hi int) (int, int) {
	for lo < hi && (b[lo] == ' ' || b[lo] == '\t') {
		lo++
	}
	for hi > lo && (b[hi-1] == ' ' || b[hi-1] == '\t') {
		hi--
	}
	return lo, hi
}

// EqualFoldASCII says whether b is s in any case, ASCII letters only folded, as Envoy
// compares names, hosts and tokens (it lower-cases ASCII only; Unicode's folds, such as
// the Kelvin sign's to k, do not apply).
func EqualFoldASCII[B ~string | ~[]byte](b B, s string) bool {
	if len(b) != len(s) {
		return false
	}
	if string(b) == s { // the usual: the same case (a word compare, no copy)
		return true
	}
	for i := 0; i < len(b); i++ {
		x, y := b[i], s[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// Field is a header field as a writer sends it: a key (canonical, or as received) and a
// value that holds no CR or LF.
type Field struct{ Key, Value string }

// ReceivedField is a header field of a head as a parser put it into a header map: its key
// there, its value, and the slot of the map's value array that held the value. A writer
// given a map and its fields can tell which entries are still as received (the same key,
// a one-value slice at that slot holding that same string) and write those in the order
// they came, without checking them again (http1's rules were applied as they were read).
type ReceivedField struct {
	Key, Value string
	Slot       *string
}

// Received reports whether the map entry k, vv is f as received (see ReceivedField).
func (f *ReceivedField) Received(k string, vv []string) bool {
	return len(vv) == 1 && &vv[0] == f.Slot && len(k) == len(f.Key) && k == f.Key &&
		len(vv[0]) == len(f.Value) && unsafe.StringData(vv[0]) == unsafe.StringData(f.Value) //nolint:gosec // the addresses are compared, not used
}

// LineEnd is bytes.Index(b, "\r\n"), the end of the first line, found by a one-byte
// vector scan for its LF: bytes.Index spends a call on every CR it meets. Only when the
// first LF is bare (not after a CR) does it search for CRLF itself.
func LineEnd(b []byte) int {
	i := bytes.IndexByte(b, '\n')
	if i < 1 || b[i-1] != '\r' {
		if i < 0 {
			return -1
		}
		return bytes.Index(b, crlf)
	}
	return i - 1
}

// HeadEnd is bytes.Index(b, "\r\n\r\n"), where an HTTP/1.1 head ends, found from LF to
// LF (a line at a time) instead of by a search that stops at every CR.
func HeadEnd(b []byte) int {
	for off := 0; ; {
		i := bytes.IndexByte(b[off:], '\n')
		if i < 0 {
			return -1
		}
		i += off
		if i >= 3 && b[i-1] == '\r' && b[i-2] == '\n' && b[i-3] == '\r' {
			return i - 3
		}
		off = i + 1
	}
}

var crlf = []byte("\r\n")

// HasLineBreak says whether v holds a CR or an LF, which would end a field line written
// with it (two vector scans: cheaper than strings.ContainsAny on short values).
func HasLineBreak(v string) bool {
	return strings.IndexByte(v, '\r') >= 0 || strings.IndexByte(v, '\n') >= 0
}

// SpaceLineBreaks is v with each CR and LF made a space, as net/http writes a field value:
// a value a field line can carry.
func SpaceLineBreaks(v string) string {
	if !HasLineBreak(v) {
		return v
	}
	return string(AppendSpaceLineBreaks(make([]byte, 0, len(v)), v))
}

// AppendSpaceLineBreaks appends v to b with each CR and LF made a space (SpaceLineBreaks,
// without a string made for it): a field line's writer appends its value so.
func AppendSpaceLineBreaks(b []byte, v string) []byte {
	if !HasLineBreak(v) {
		return append(b, v...)
	}
	for i := 0; i < len(v); i++ {
		ch := v[i]
		if ch == '\r' || ch == '\n' {
			ch = ' '
		}
		b = append(b, ch)
	}
	return b
}
