package pool

import "github.com/lucid-mesh/lucid/internal/dataplane/http1"

// The plain reader's field loop (h1read.go): each field line of an answer head is read
// once, from its name to its CRLF, by http1.ScanField, the scanner the request head check
// runs too; what it accepts is what http1's per-line passes accept. Only the fields that
// decide the framing are looked at here.

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
		colon, vs, ve, e, canonical, ok := http1.ScanField(buf, off)
		if !ok {
			return spans, 0, -1 // not all there yet, a bad name or value, a folded line
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
