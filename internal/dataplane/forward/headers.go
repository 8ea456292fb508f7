package forward

import (
	"encoding/binary"
	"math/rand/v2"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
	"github.com/lucid-mesh/lucid/internal/dataplane/strslab"
)

// removeHopHeaders deletes the hop-by-hop headers (RFC 9110 §7.6.1, the list
// net/http/httputil removes: http1.HopByHop) and the headers named in Connection.
// keepTrailersTE keeps "te: trailers" (gRPC needs it end to end).
func removeHopHeaders(h http.Header, keepTrailersTE bool) {
	// One pass over the map, deleting as it goes: a header map is small, and one walk
	// costs less than a delete for each name; most messages have none of them.
	var hv hopValues
	for k, vv := range h {
		if http1.HopByHop(k) {
			hv.note(k, vv)
			delete(h, k)
		}
	}
	hv.removeOptions(h, keepTrailersTE)
}

// removeHopFields is removeHopHeaders for a map whose hop-by-hop keys are known to be
// exactly hop (a message whose reader listed them: the pool's plain answers): a delete
// for each instead of a walk of the map.
func removeHopFields(h http.Header, hop []string, keepTrailersTE bool) {
	var hv hopValues
	for _, k := range hop {
		if vv, ok := h[k]; ok { // not when listed twice
			hv.note(k, vv)
			delete(h, k)
		}
	}
	hv.removeOptions(h, keepTrailersTE)
}

// hopValues are what a message's Connection and TE fields said, kept as its hop-by-hop
// fields are removed.
type hopValues struct{ conn, te []string }

// note keeps the values vv of the hop-by-hop field k when they matter after it is gone.
func (hv *hopValues) note(k string, vv []string) {
	switch k {
	case "Connection":
		hv.conn = vv
	case "Te":
		hv.te = vv
	}
}

// removeOptions deletes the fields the Connection values name, once the hop-by-hop
// fields are gone, and puts back "te: trailers" when keepTrailersTE and the TE values
// asked for trailers (unless Connection named TE).
func (hv *hopValues) removeOptions(h http.Header, keepTrailersTE bool) {
	te := hv.te
	for _, v := range hv.conn {
		for f := range strings.SplitSeq(v, ",") {
			// The options nearly every message carries are deleted by their canonical
			// names: Del would allocate to canonicalise them (Keep-Alive went with the
			// hop-by-hop fields).
			switch f = textproto.TrimString(f); {
			case f == "", http1.EqualFoldASCII(f, "keep-alive"):
			case http1.EqualFoldASCII(f, "close"):
				delete(h, "Close")
			case http1.EqualFoldASCII(f, "te"):
				te = nil // a TE the connection names goes with it, "trailers" or not
			default:
				h.Del(f)
			}
		}
	}
	if keepTrailersTE && hasTrailersTE(te) {
		h["Te"] = []string{"trailers"}
	}
}

// hasTrailersTE says whether the TE values te include "trailers".
func hasTrailersTE(te []string) bool {
	for _, v := range te {
		for f := range strings.SplitSeq(v, ",") {
			if http1.EqualFoldASCII(textproto.TrimString(f), "trailers") {
				return true
			}
		}
	}
	return false
}

// newRequestID returns a random UUID version 4, as Envoy generates x-request-id, in a
// string that shares a block with others (strslab).
func newRequestID() string {
	// math/rand/v2's generator (ChaCha8 per thread, seeded by the kernel): an id must not
	// collide and is not a secret, and this costs a fraction of crypto/rand's path.
	var u [16]byte
	binary.LittleEndian.PutUint64(u[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(u[8:], rand.Uint64())
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	b := formatUUID(&u)
	return strslab.String(b[:])
}

// hexPair holds each byte's two lower-case hex digits, as the little-endian uint16 that
// writes them in order.
var hexPair = func() (t [256]uint16) {
	const digits = "0123456789abcdef"
	for c := range t {
		t[c] = uint16(digits[c>>4]) | uint16(digits[c&15])<<8
	}
	return t
}()

// uuidAt is where each byte's digits go in a UUID's text form (8-4-4-4-12).
var uuidAt = [16]uint8{0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34}

// formatUUID is u in the UUID's text form, lower-case hex digits: two digits per byte
// from one table (hex.Encode finds each digit of its own).
func formatUUID(u *[16]byte) (b [36]byte) {
	b[8], b[13], b[18], b[23] = '-', '-', '-', '-'
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[uuidAt[i]:], hexPair[c])
	}
	return b
}

// shadowHost appends "-shadow" to the host part of an authority, as Envoy does for mirrors:
// "reviews:9080" → "reviews-shadow:9080".
func shadowHost(host string) string {
	if i := strings.LastIndexByte(host, ':'); i > 0 && !strings.HasSuffix(host, "]") {
		return host[:i] + "-shadow" + host[i:]
	}
	return host + "-shadow"
}

// protocolName is Envoy's %PROTOCOL%.
func protocolName(r *http.Request) string {
	switch {
	case r.ProtoMajor == 2:
		return "HTTP/2"
	case r.ProtoMajor == 1 && r.ProtoMinor == 0:
		return "HTTP/1.0"
	case r.ProtoMajor == 3:
		return "HTTP/3"
	}
	return "HTTP/1.1"
}

// oneLine makes s safe for a header value.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}
