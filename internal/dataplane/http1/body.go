package http1

import (
	"bytes"
	"net/http"
	"strconv"

	"golang.org/x/net/http/httpguts"
)

// maxChunkLine bounds a chunk-size line with its extensions (net/http's own bound).
const maxChunkLine = 4096

// headEnd finds the end of the head at the start of b (the index after its CRLF CRLF),
// or -1 when it has not all arrived. A line ending in a bare LF is refused at once:
// parsers that accept it and parsers that do not would split the stream differently.
func headEnd(b []byte) (int, *Rejection) {
	off := 0
	for {
		i := bytes.IndexByte(b[off:], '\n')
		if i < 0 {
			return -1, nil
		}
		i += off
		if i == 0 || b[i-1] != '\r' {
			return -1, reject(http.StatusBadRequest, DetailsCodecError, "a line of the request head ends in LF without CR")
		}
		if i == off+1 && off > 0 { // an empty line after the request line and fields
			return i + 1, nil
		}
		off = i + 1
	}
}

// chunkSize parses a chunk-size line without its CRLF (RFC 9112 §7.1): hex digits, then
// optional extensions ";name[=value]". No whitespace before the extensions, no control
// characters anywhere, at most 16 hex digits.
func chunkSize(line []byte) (int64, string) {
	sizePart, ext, hasExt := bytes.Cut(line, []byte(";"))
	if len(sizePart) == 0 {
		return 0, "empty chunk size"
	}
	if len(sizePart) > 15 {
		return 0, "chunk size " + strconv.Quote(truncate(string(sizePart))) + " is too large"
	}
	var n int64
	for _, c := range sizePart {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, "chunk size " + strconv.Quote(truncate(string(sizePart))) + " is not hexadecimal"
		}
		n = n<<4 | int64(d)
	}
	if hasExt {
		for _, c := range ext {
			if (c < ' ' && c != '\t') || c == 0x7f {
				return 0, "control character in a chunk extension"
			}
		}
	}
	return n, ""
}

// trailerField checks one trailer line (without CRLF) as a header field.
func trailerField(line []byte) string {
	if line[0] == ' ' || line[0] == '\t' {
		return "obsolete line folding in the trailers"
	}
	name, value, ok := bytes.Cut(line, []byte(":"))
	if !ok || !httpguts.ValidHeaderFieldName(string(name)) {
		return "malformed trailer line " + strconv.Quote(truncate(string(line)))
	}
	if !httpguts.ValidHeaderFieldValue(string(bytes.Trim(value, " \t"))) {
		return "invalid character in trailer " + strconv.Quote(truncate(string(name)))
	}
	return ""
}

// Poison bytes: what net/http's chunked body reader is handed instead of a malformed
// piece of framing, so that its own parser fails at the same place (and the handler's
// body read returns an error) without the connection reporting a read error, which
// would look like a client that went away.
var (
	poisonLine = []byte("x\r\n") // where a chunk-size or trailer line is expected
	poisonCRLF = []byte("xx")    // where the CRLF after chunk data is expected
)
