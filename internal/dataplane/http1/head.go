package http1

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/net/http/httpguts"
)

// Head is a request head ParseHead accepted, and the framing of the body it announces.
type Head struct {
	Method, Target, Proto string
	// Line is the request line to hand on, without CRLF: the one received, with a
	// "#fragment" cut from the target (Envoy strips it under Istio's runtime settings).
	Line []byte
	// ContentLength is the body length; -1 when the request has no Content-Length.
	ContentLength int64
	Chunked       bool
	// Upgrade: the request asks to switch protocols (Connection: upgrade and an Upgrade
	// other than h2c, which Envoy ignores). What follows the head is not HTTP/1.1 any
	// more once the upgrade succeeds, so it is not read as requests.
	Upgrade bool
	// Connect: a CONNECT request, after which the connection is a tunnel.
	Connect bool
	// Fields is the number of header fields.
	Fields int
	// Where the request line's parts lie in the head: b[:SP1] is the method,
	// b[SP1+1:SP2] the target.
	SP1, SP2 int32
}

// maxSpans is how many fields' spans a Conn notes per head.
const maxSpans = 16

// FieldSpan is one header field of a head, as offsets into the head: the line starts
// with the name, which ends at Colon; the value, without the whitespace around it, is
// [ValueStart, ValueEnd). Canonical: the name is already in net/textproto's canonical
// form (NameForm).
type FieldSpan struct {
	Start, Colon, ValueStart, ValueEnd int32
	Canonical                          bool
}

// Key is the field's header map key, from hs, the head's bytes as a string: the name as
// received when it is canonical already (the usual: no string built), else its canonical
// form.
func (sp *FieldSpan) Key(hs string) string {
	if sp.Canonical {
		return hs[sp.Start:sp.Colon]
	}
	return CanonicalKey(hs[sp.Start:sp.Colon])
}

// Value is the field's value, from hs as Key's.
func (sp *FieldSpan) Value(hs string) string { return hs[sp.ValueStart:sp.ValueEnd] }

// Line is the field's line in the head b: from its name to the end of its value.
func (sp *FieldSpan) Line(b []byte) []byte { return b[sp.Start:sp.ValueEnd] }

// KeyIn is Key from line, a string of the field's Line instead of the whole head.
func (sp *FieldSpan) KeyIn(line string) string {
	if sp.Canonical {
		return line[:sp.Colon-sp.Start]
	}
	return CanonicalKey(line[:sp.Colon-sp.Start])
}

// ValueIn is Value from line, as KeyIn.
func (sp *FieldSpan) ValueIn(line string) string { return line[sp.ValueStart-sp.Start:] }

// ParseHead parses a complete request head: the request line, the header fields and the
// empty line that ends them, each line ending in CRLF. It applies Envoy's HTTP/1 codec
// rules, in Envoy's order (the request line, each field as it is read, then the checks
// on the complete head), and returns the first violation as a Rejection.
func ParseHead(b []byte, lim Limits) (*Head, *Rejection) {
	h := new(Head)
	if rj := parseHead(b, lim, h, false, nil); rj != nil {
		return nil, rj
	}
	return h, nil
}

// parseHead is ParseHead into h (a Conn's own). With borrow, h's strings are b's bytes,
// good only until b changes (a Conn clears them before), and the head costs no
// allocation; else they share one string of their own. With spans, where the first
// len(spans) fields lie in b is noted in it.
func parseHead(b []byte, lim Limits, h *Head, borrow bool, spans *[maxSpans]FieldSpan) *Rejection {
	return parseHeadLines(b, lim, h, borrow, spans, false)
}

// parseHeadLines is parseHead. The request line is read by scanRequestLine and each field
// line by ScanField, in one pass each; a line they do not take is read again by the passes
// that say why (LineEnd, then parseRequestLine or parseField), so that a refused head gets
// the same Rejection either way. With perLine every line is read that way: the tests'
// reference for what the one-pass readers decide.
func parseHeadLines(b []byte, lim Limits, h *Head, borrow bool, spans *[maxSpans]FieldSpan, perLine bool) *Rejection {
	*h = Head{}
	if !bytes.HasSuffix(b, []byte("\r\n\r\n")) && !bytes.Equal(b, []byte("\r\n")) {
		return reject(http.StatusBadRequest, DetailsCodecError, "the request head does not end with an empty line (CRLF CRLF)")
	}
	lineEnd := -1
	if !perLine {
		lineEnd = scanRequestLine(b, h, borrow)
	}
	if lineEnd < 0 {
		lineEnd = LineEnd(b)
		if rj := parseRequestLine(b[:lineEnd], h, borrow); rj != nil {
			return rj
		}
	}
	label := func(r *Rejection) *Rejection {
		r.Method, r.Target, r.Proto = strings.Clone(h.Method), strings.Clone(h.Target), strings.Clone(h.Proto)
		return r
	}
	h.ContentLength = -1
	size, maxSize, maxFields := len(h.Target), lim.HeaderBytes(), lim.Headers()
	var f fields
	// off is where the next line starts. The head ends with CRLF CRLF (checked above), and
	// no field line holds a CRLF before its end, so the empty line is found before b ends.
	off := lineEnd + 2
	for b[off] != '\r' || b[off+1] != '\n' {
		colon, vs, ve, cr, canonical, ok := ScanField(b, off)
		if !ok || perLine {
			i := LineEnd(b[off:]) // never -1, nor 0 (the empty line ends the loop)
			c, s, e, cn, rj := parseField(b[off : off+i])
			if rj != nil {
				return label(rj)
			}
			colon, vs, ve, cr, canonical = off+c, off+s, off+e, off+i, cn
		}
		name, value := b[off:colon], b[vs:ve]
		if spans != nil && h.Fields < len(spans) {
			spans[h.Fields] = FieldSpan{int32(off), int32(colon), int32(vs), int32(ve), canonical}
		}
		size += len(name) + len(value)
		if size > maxSize {
			return label(reject(http.StatusRequestHeaderFieldsTooLarge, DetailsHeadersTooLarge,
				"request headers exceed max_request_headers_kb ("+strconv.Itoa(lim.HeaderBytes()>>10)+
					" KiB of URL, header names and values) at header "+strconv.Quote(truncate(string(name)))))
		}
		h.Fields++
		if h.Fields > maxFields {
			return label(reject(http.StatusRequestHeaderFieldsTooLarge, DetailsTooManyHeaders,
				"more than max_headers_count ("+strconv.Itoa(lim.Headers())+") header fields"))
		}
		f.add(name, value)
		off = cr + 2
	}
	if off+2 != len(b) {
		return label(reject(http.StatusBadRequest, DetailsCodecError, "bytes after the empty line that ends the head"))
	}
	if rj := h.framing(&f); rj != nil {
		return label(rj)
	}
	if rj := h.checkTarget(); rj != nil {
		return label(rj)
	}
	if h.Proto != "HTTP/1.1" && !lim.AcceptHTTP10 {
		return label(reject(http.StatusUpgradeRequired, DetailsLowVersion,
			h.Proto+" is not accepted (Istio's proxies serve HTTP/1.1 and HTTP/2; accept_http_10 is off)"))
	}
	if h.Chunked && h.Proto != "HTTP/1.1" { // HTTP/1.0 has no chunked coding; net/http would ignore it
		return label(reject(http.StatusNotImplemented, DetailsInvalidTE, "Transfer-Encoding on an "+h.Proto+" request"))
	}
	if rj := checkHost(h, &f); rj != nil {
		return label(rj)
	}
	if f.upgrade != nil && f.connUpgrade && !EqualFoldASCII(f.upgrade, "h2c") {
		h.Upgrade = true
	}
	return nil
}

// scanRequestLine reads the usual request line at the start of the head b in one pass: a
// method of token bytes, SP, a target of visible ASCII bytes but '#', SP, "HTTP/1." and a
// digit, CRLF; a line parseRequestLine would take as it is. It sets h as parseRequestLine
// does and returns the index of the line's CR; -1, with h as it was, for any other line,
// which parseRequestLine reads again (and refuses, when it must, with its message).
func scanRequestLine(b []byte, h *Head, borrow bool) int {
	sp1 := 0
	for sp1 < len(b) && tokenByte[b[sp1]] {
		sp1++
	}
	if sp1 == 0 || sp1 >= len(b) || b[sp1] != ' ' {
		return -1
	}
	// The target eight bytes at a time, up to the first byte that cannot be in it (or is
	// '#'): the SP before the version, in the usual line.
	sp2 := sp1 + 1
	for {
		if len(b)-sp2 < 8 {
			for sp2 < len(b) && b[sp2]-'!' <= '~'-'!' && b[sp2] != '#' {
				sp2++
			}
			break
		}
		if m := targetStops(binary.LittleEndian.Uint64(b[sp2:])); m != 0 {
			sp2 += bits.TrailingZeros64(m) >> 3
			break
		}
		sp2 += 8
	}
	if sp2 == sp1+1 || len(b)-sp2 < len(" HTTP/1.1\r\n") || b[sp2] != ' ' {
		return -1
	}
	if v := b[sp2+1 : sp2+11]; string(v[:7]) != "HTTP/1." || !isDigit(v[7]) || v[8] != '\r' || v[9] != '\n' {
		return -1
	}
	line := b[:sp2+9]
	h.SP1, h.SP2 = int32(sp1), int32(sp2)
	var ls string
	if borrow {
		ls = unsafe.String(&line[0], len(line)) //nolint:gosec // line is not empty; the Conn clears the strings before line changes
	} else {
		ls = string(line)
	}
	h.Method, h.Target, h.Proto, h.Line = ls[:sp1], ls[sp1+1:sp2], ls[sp2+1:], line
	return len(line)
}

// targetStops marks, with their high bit, the bytes of x scanRequestLine stops a target
// at: below '!' (SP, control bytes), from DEL, and '#'. Exact as a whole, and its lowest
// mark is exact (a borrow only marks bytes above a true one).
func targetStops(x uint64) uint64 {
	y := x ^ '#'*ones // a '#' becomes a zero byte
	return ((x-'!'*ones)&^x | x | (x&^highs + ones) | (y-ones)&^y) & highs
}

// parseRequestLine reads "method SP request-target SP HTTP-version" into h. Method,
// target and version share one string: line's own bytes with borrow (see parseHead).
// A Rejection gets copies.
func parseRequestLine(line []byte, h *Head, borrow bool) *Rejection {
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return reject(http.StatusBadRequest, DetailsCodecError, "malformed request line "+strconv.Quote(truncate(string(line))))
	}
	sp2 := bytes.IndexByte(line[sp1+1:], ' ')
	if sp2 < 0 {
		return reject(http.StatusBadRequest, DetailsCodecError, "request line without an HTTP version (HTTP/0.9 is not served): "+strconv.Quote(truncate(string(line))))
	}
	sp2 += sp1 + 1
	h.SP1, h.SP2 = int32(sp1), int32(sp2)
	var ls string
	if borrow {
		ls = unsafe.String(&line[0], len(line)) //nolint:gosec // line is not empty (sp1 > 0); the Conn clears the strings before line changes
	} else {
		ls = string(line)
	}
	method, target, proto := ls[:sp1], ls[sp1+1:sp2], ls[sp2+1:]
	h.Method, h.Target, h.Proto = method, target, proto
	label := func(r *Rejection) *Rejection {
		r.Method, r.Target, r.Proto = strings.Clone(method), strings.Clone(target), strings.Clone(proto)
		return r
	}
	if !ValidName(method) {
		return label(reject(http.StatusBadRequest, DetailsCodecError, "invalid method "+strconv.Quote(truncate(method))))
	}
	if target == "" {
		return label(reject(http.StatusBadRequest, DetailsCodecError, "empty request target"))
	}
	for i := 0; i < len(target); i++ {
		if c := target[i]; c <= ' ' || c >= 0x7f {
			return label(reject(http.StatusBadRequest, DetailsCodecError,
				"request target has an invalid character "+strconv.QuoteRune(rune(c))+" at byte "+strconv.Itoa(i)))
		}
	}
	if len(proto) != len("HTTP/1.1") || !strings.HasPrefix(proto, "HTTP/") || !isDigit(proto[5]) || proto[6] != '.' || !isDigit(proto[7]) {
		return label(reject(http.StatusBadRequest, DetailsCodecError, "malformed HTTP version "+strconv.Quote(truncate(proto))))
	}
	if proto[5] != '1' {
		return label(reject(http.StatusBadRequest, DetailsCodecError, proto+" in an HTTP/1 request line"))
	}
	h.Line = line
	if i := strings.IndexByte(target, '#'); i >= 0 {
		// Envoy, as Istio configures it (http_reject_path_with_fragment false), strips the
		// fragment: it never reaches routing, authorization or the upstream.
		h.Target = target[:i]
		h.Line = append(append(append([]byte(method), ' '), h.Target...), line[sp2:]...)
	}
	return nil
}

// parseField reads "name: value" (RFC 9112 §5): a token name directly followed by the
// colon, the value's surrounding whitespace trimmed. The name is line[:colon], the value
// line[vs:ve]; canonical says whether the name is in canonical form (NameForm).
func parseField(line []byte) (colon, vs, ve int, canonical bool, rj *Rejection) {
	if line[0] == ' ' || line[0] == '\t' {
		return 0, 0, 0, false, reject(http.StatusBadRequest, DetailsCodecError,
			"obsolete line folding (a header line starting with whitespace) is not accepted")
	}
	colon = bytes.IndexByte(line, ':')
	if colon < 0 {
		return 0, 0, 0, false, reject(http.StatusBadRequest, DetailsCodecError, "header line without a colon: "+strconv.Quote(truncate(string(line))))
	}
	name := line[:colon]
	token, canonical := NameForm(name)
	if !token {
		why := "invalid header name " + strconv.Quote(truncate(string(name)))
		if trimmed := bytes.TrimRight(name, " \t"); len(trimmed) != len(name) {
			why = "whitespace between header name " + strconv.Quote(truncate(string(trimmed))) + " and its colon"
		}
		return 0, 0, 0, false, reject(http.StatusBadRequest, DetailsCodecError, why)
	}
	vs, ve = OWSBounds(line, colon+1, len(line))
	if !ValidValue(line[vs:ve]) {
		return 0, 0, 0, false, reject(http.StatusBadRequest, DetailsInvalidCharacters, "header "+strconv.Quote(truncate(string(name)))+" has an invalid character in its value")
	}
	return colon, vs, ve, canonical, nil
}

// fields are the header fields that decide a request's framing and routing.
type fields struct {
	hosts, cls, tes int
	host, cl, te    []byte // the first of each
	clOther         []byte // a Content-Length that differs from the first (nil when all agree)
	connUpgrade     bool   // Connection lists "upgrade"
	upgrade         []byte // the last Upgrade
}

func (f *fields) add(name, value []byte) {
	// The names have lengths of their own: most fields are none of them (one comparison
	// of lengths each), and a name is compared with one, by its canonical form
	// (EqualFoldASCII compares the bytes as they are first: the usual case).
	switch len(name) {
	case len("host"):
		if EqualFoldASCII(name, "Host") {
			if f.hosts++; f.hosts == 1 {
				f.host = value
			}
		}
	case len("content-length"):
		if EqualFoldASCII(name, "Content-Length") {
			if f.cls++; f.cls == 1 {
				f.cl = value
			} else if !bytes.Equal(value, f.cl) && f.clOther == nil {
				f.clOther = value
			}
		}
	case len("transfer-encoding"):
		if EqualFoldASCII(name, "Transfer-Encoding") {
			if f.tes++; f.tes == 1 {
				f.te = value
			}
		}
	case len("connection"):
		if EqualFoldASCII(name, "Connection") {
			for t := range bytes.SplitSeq(value, []byte(",")) {
				if EqualFoldASCII(bytes.TrimSpace(t), "upgrade") {
					f.connUpgrade = true
				}
			}
		}
	case len("upgrade"):
		if EqualFoldASCII(name, "Upgrade") {
			f.upgrade = bytes.TrimSpace(value)
		}
	}
}

// framing decides how the body is delimited, refusing what RFC 9112 §6.3 makes ambiguous:
// Content-Length with Transfer-Encoding, a Transfer-Encoding other than a single
// "chunked", Content-Lengths that disagree or are not a number, a body on CONNECT.
func (h *Head) framing(f *fields) *Rejection {
	h.Connect = h.Method == http.MethodConnect
	if f.cls > 0 {
		if f.clOther != nil {
			return reject(http.StatusBadRequest, DetailsCodecError, "Content-Length headers disagree ("+strconv.Quote(truncate(string(f.cl)))+" and "+strconv.Quote(truncate(string(f.clOther)))+")")
		}
		n, ok := ParseLength(f.cl)
		if !ok {
			return reject(http.StatusBadRequest, DetailsCodecError, "Content-Length "+strconv.Quote(truncate(string(f.cl)))+" is not a number of bytes")
		}
		h.ContentLength = n
	}
	if h.Connect && h.ContentLength > 0 {
		return reject(http.StatusBadRequest, DetailsBodyDisallowed, "a CONNECT request cannot have a body (Content-Length "+strconv.FormatInt(h.ContentLength, 10)+")")
	}
	if f.tes == 0 {
		return nil
	}
	if f.cls > 0 {
		return reject(http.StatusBadRequest, DetailsChunkedCL, "both Content-Length and Transfer-Encoding are set: the body's length would be read two ways")
	}
	if f.tes > 1 || !EqualFoldASCII(f.te, "chunked") || h.Connect {
		why := "Transfer-Encoding " + strconv.Quote(truncate(string(f.te))) + " is not supported (only a single \"chunked\")"
		switch {
		case h.Connect:
			why = "a CONNECT request cannot have Transfer-Encoding"
		case f.tes > 1:
			why = "Transfer-Encoding appears " + strconv.Itoa(f.tes) + " times (only a single \"chunked\" is supported)"
		}
		return reject(http.StatusNotImplemented, DetailsInvalidTE, why)
	}
	h.Chunked = true
	return nil
}

// checkTarget accepts the request-target forms of RFC 9112 §3.2: origin ("/path"),
// absolute ("http://host/path", what an explicit proxy gets), authority ("host:port", only
// for CONNECT) and asterisk ("*", only for OPTIONS).
func (h *Head) checkTarget() *Rejection {
	t := h.Target
	ok := false
	switch {
	case h.Connect:
		u, err := url.Parse("http://" + t) // as net/http reads it
		ok = err == nil && u.Port() != "" && u.Hostname() != "" && !strings.Contains(t, "/")
	case t == "*":
		ok = h.Method == http.MethodOptions
	case strings.HasPrefix(t, "/"):
		ok = validEscapes(t) // all net/http's own parser refuses in an origin-form target
	default:
		lower := strings.ToLower(t)
		if strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://") {
			_, err := url.ParseRequestURI(t)
			ok = err == nil
		}
	}
	if ok {
		return nil
	}
	return reject(http.StatusBadRequest, DetailsInvalidURL, "request target "+strconv.Quote(truncate(h.Target))+" is not valid for "+h.Method)
}

// checkHost requires exactly one valid Host header on HTTP/1.1 (RFC 9112 §3.2), as
// net/http does; HTTP/1.0 may omit it.
func checkHost(h *Head, f *fields) *Rejection {
	switch {
	case f.hosts > 1:
		return reject(http.StatusBadRequest, DetailsCodecError, "more than one Host header")
	case f.hosts == 0 && h.Proto == "HTTP/1.1":
		return reject(http.StatusBadRequest, DetailsMissingHost, "an HTTP/1.1 request without a Host header")
	case f.hosts == 1 && !httpguts.ValidHostHeader(string(f.host)):
		return reject(http.StatusBadRequest, DetailsInvalidAuthority, "invalid Host header "+strconv.Quote(truncate(string(f.host))))
	}
	return nil
}

// validEscapes reports whether every "%" in the path of an origin-form target starts a
// two-hex-digit escape (the query is not checked, as net/http does not).
func validEscapes(t string) bool {
	for i := 0; i < len(t); i++ {
		switch t[i] {
		case '?': // the path ends here
			return true
		case '%':
			// t[i+1:i+3], in the path: no '?' (not a hex digit) ends the path before.
			if i+2 >= len(t) || !isHex(t[i+1]) || !isHex(t[i+2]) {
				return false
			}
			i += 2
		}
	}
	return true
}

func isHex(c byte) bool { return isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'f') }

// ParseLength reads a Content-Length value: up to 18 decimal digits, nothing else (so it
// cannot overflow, and signs, spaces and lists are refused).
func ParseLength[T string | []byte](v T) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for i := range len(v) {
		c := v[i]
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func isTokenByte(c byte) bool { return tokenByte[c] }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// truncate keeps what a message quotes short.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
