package testutil

import "math/rand/v2"

// RandomFieldLines is up to five HTTP/1.1 field lines made of the pieces head parsers
// stumble on, then the empty line that ends a head, for tests that hold a parser to a
// reference on many heads: names of every kind (canonical or not, '_' and '.', bytes no
// token has), values with tabs, control bytes and obs-text, whitespace around both, and
// framing, a caller's own whole lines (its framing fields), now and then. Clean lines
// mostly hold only what a field may hold and end in CRLF, and the empty line follows
// them; otherwise lines may be folded, lose their colon or end in a bare CR or LF, and the
// head may end oddly, be cut short, or have a body after it.
func RandomFieldLines(r *rand.Rand, clean bool, framing ...string) []byte {
	pick := func(s ...string) string { return s[r.IntN(len(s))] }
	// insertNoted puts up to two bytes of note into p (with clean, seldom).
	const bytesOfNote = "aZz-09_.:; \t\r\n\x00\x01\x1f\x7f\x80\xff(\"/@[]{}~"
	insertNoted := func(p []byte) []byte {
		for range r.IntN(3) {
			if clean && r.IntN(8) != 0 {
				break
			}
			i := r.IntN(len(p) + 1)
			p = append(p[:i], append([]byte{bytesOfNote[r.IntN(len(bytesOfNote))]}, p[i:]...)...)
		}
		return p
	}
	var b []byte
	for range r.IntN(6) {
		switch r.IntN(8) {
		case 0:
			b = append(b, pick(framing...)...)
		case 1:
			if !clean || r.IntN(8) == 0 {
				b = append(b, pick(" folded", "\tfolded", " ", "")...)
			} else {
				b = append(b, "X-Y: z"...)
			}
		default:
			b = append(b, insertNoted([]byte(pick("Server", "Content-Type", "x-request-id", "X-B3-TraceId", "ETAG", "Set-Cookie",
				"Abcdefg-hijklmn-Opq", "X_A", "X.A", "Keep-Alive", "Accept-Ranges", "x", "User-Agent", "Accept", "X-Forwarded-For")))...)
			if clean {
				b = append(b, pick(":", ": ", ": ", ":\t", ": \t")...)
			} else {
				b = append(b, pick(":", ": ", ":\t", ": \t", " :", "")...)
			}
			b = append(b, insertNoted([]byte(pick("", "nginx", "text/plain; charset=utf-8", "1024", "a b", "\t", "keep-alive",
				"caf\xc3\xa9", "0123456789abcdef0123", "*/*")))...)
			b = append(b, pick("", " ", "\t ", " \t")...)
		}
		if clean {
			b = append(b, "\r\n"...)
		} else {
			b = append(b, pick("\r\n", "\r\n", "\r\n", "\n", "\r", "\r\r\n")...)
		}
	}
	if clean {
		return append(b, "\r\n"...)
	}
	b = append(b, pick("\r\n", "\r\n", "", "\n", "\r")...)
	if r.IntN(4) == 0 && len(b) > 0 {
		b = b[:r.IntN(len(b))]
	}
	if r.IntN(3) == 0 {
		b = append(b, "body of the message"...)
	}
	return b
}
