package http1

import (
	"bytes"
	"net/http"
	"net/url"
	"strconv"
	"strings"

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
}

// ParseHead parses a complete request head: the request line, the header fields and the
// empty line that ends them, each line ending in CRLF. It applies Envoy's HTTP/1 codec
// rules, in Envoy's order (the request line, each field as it is read, then the checks
// on the complete head), and returns the first violation as a Rejection.
func ParseHead(b []byte, lim Limits) (*Head, *Rejection) {
	if !bytes.HasSuffix(b, []byte("\r\n\r\n")) && !bytes.Equal(b, []byte("\r\n")) {
		return nil, reject(http.StatusBadRequest, DetailsCodecError, "the request head does not end with an empty line (CRLF CRLF)")
	}
	lineEnd := bytes.Index(b, []byte("\r\n"))
	h, rj := parseRequestLine(b[:lineEnd])
	if rj != nil {
		return nil, rj
	}
	label := func(r *Rejection) *Rejection {
		r.Method, r.Target, r.Proto = h.Method, h.Target, h.Proto
		return r
	}
	h.ContentLength = -1
	size := len(h.Target)
	var (
		hosts, cls, tes []string
		connTokens      []string
		upgrade         string
	)
	rest := b[lineEnd+2:]
	for {
		i := bytes.Index(rest, []byte("\r\n"))
		line := rest[:i]
		rest = rest[i+2:]
		if len(line) == 0 {
			break
		}
		name, value, rj := parseField(line)
		if rj != nil {
			return nil, label(rj)
		}
		size += len(name) + len(value)
		if size > lim.HeaderBytes() {
			return nil, label(reject(http.StatusRequestHeaderFieldsTooLarge, DetailsHeadersTooLarge,
				"request headers exceed max_request_headers_kb ("+strconv.Itoa(lim.HeaderBytes()>>10)+
					" KiB of URL, header names and values) at header "+strconv.Quote(truncate(name))))
		}
		h.Fields++
		if h.Fields > lim.Headers() {
			return nil, label(reject(http.StatusRequestHeaderFieldsTooLarge, DetailsTooManyHeaders,
				"more than max_headers_count ("+strconv.Itoa(lim.Headers())+") header fields"))
		}
		switch strings.ToLower(name) {
		case "host":
			hosts = append(hosts, value)
		case "content-length":
			cls = append(cls, value)
		case "transfer-encoding":
			tes = append(tes, value)
		case "connection":
			connTokens = append(connTokens, tokens(value)...)
		case "upgrade":
			upgrade = value
		}
	}
	if len(rest) != 0 {
		return nil, label(reject(http.StatusBadRequest, DetailsCodecError, "bytes after the empty line that ends the head"))
	}
	if rj := h.framing(cls, tes); rj != nil {
		return nil, label(rj)
	}
	if rj := h.checkTarget(); rj != nil {
		return nil, label(rj)
	}
	if h.Proto != "HTTP/1.1" && !lim.AcceptHTTP10 {
		return nil, label(reject(http.StatusUpgradeRequired, DetailsLowVersion,
			h.Proto+" is not accepted (Istio's proxies serve HTTP/1.1 and HTTP/2; accept_http_10 is off)"))
	}
	if h.Chunked && h.Proto != "HTTP/1.1" { // HTTP/1.0 has no chunked coding; net/http would ignore it
		return nil, label(reject(http.StatusNotImplemented, DetailsInvalidTE, "Transfer-Encoding on an "+h.Proto+" request"))
	}
	if rj := checkHost(h, hosts); rj != nil {
		return nil, label(rj)
	}
	if upgrade != "" && hasToken(connTokens, "upgrade") && !strings.EqualFold(strings.TrimSpace(upgrade), "h2c") {
		h.Upgrade = true
	}
	return h, nil
}

// parseRequestLine reads "method SP request-target SP HTTP-version".
func parseRequestLine(line []byte) (*Head, *Rejection) {
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return nil, reject(http.StatusBadRequest, DetailsCodecError, "malformed request line "+strconv.Quote(truncate(string(line))))
	}
	sp2 := bytes.IndexByte(line[sp1+1:], ' ')
	if sp2 < 0 {
		return nil, reject(http.StatusBadRequest, DetailsCodecError, "request line without an HTTP version (HTTP/0.9 is not served): "+strconv.Quote(truncate(string(line))))
	}
	sp2 += sp1 + 1
	method, target, proto := string(line[:sp1]), string(line[sp1+1:sp2]), string(line[sp2+1:])
	h := &Head{Method: method, Target: target, Proto: proto}
	label := func(r *Rejection) *Rejection {
		r.Method, r.Target, r.Proto = method, target, proto
		return r
	}
	if !isToken(method) {
		return nil, label(reject(http.StatusBadRequest, DetailsCodecError, "invalid method "+strconv.Quote(truncate(method))))
	}
	if target == "" {
		return nil, label(reject(http.StatusBadRequest, DetailsCodecError, "empty request target"))
	}
	for i := 0; i < len(target); i++ {
		if c := target[i]; c <= ' ' || c >= 0x7f {
			return nil, label(reject(http.StatusBadRequest, DetailsCodecError,
				"request target has an invalid character "+strconv.QuoteRune(rune(c))+" at byte "+strconv.Itoa(i)))
		}
	}
	if len(proto) != len("HTTP/1.1") || !strings.HasPrefix(proto, "HTTP/") || !isDigit(proto[5]) || proto[6] != '.' || !isDigit(proto[7]) {
		return nil, label(reject(http.StatusBadRequest, DetailsCodecError, "malformed HTTP version "+strconv.Quote(truncate(proto))))
	}
	if proto[5] != '1' {
		return nil, label(reject(http.StatusBadRequest, DetailsCodecError, proto+" in an HTTP/1 request line"))
	}
	h.Line = line
	if i := strings.IndexByte(target, '#'); i >= 0 {
		// Envoy, as Istio configures it (http_reject_path_with_fragment false), strips the
		// fragment: it never reaches routing, authorization or the upstream.
		h.Target = target[:i]
		h.Line = append(append(append([]byte(method), ' '), h.Target...), line[sp2:]...)
	}
	return h, nil
}

// parseField reads "name: value" (RFC 9112 §5): a token name directly followed by the
// colon, the value's surrounding whitespace trimmed.
func parseField(line []byte) (name, value string, rj *Rejection) {
	if line[0] == ' ' || line[0] == '\t' {
		return "", "", reject(http.StatusBadRequest, DetailsCodecError,
			"obsolete line folding (a header line starting with whitespace) is not accepted")
	}
	colon := bytes.IndexByte(line, ':')
	if colon < 0 {
		return "", "", reject(http.StatusBadRequest, DetailsCodecError, "header line without a colon: "+strconv.Quote(truncate(string(line))))
	}
	name = string(line[:colon])
	if !httpguts.ValidHeaderFieldName(name) {
		why := "invalid header name " + strconv.Quote(truncate(name))
		if strings.TrimRight(name, " \t") != name {
			why = "whitespace between header name " + strconv.Quote(truncate(strings.TrimRight(name, " \t"))) + " and its colon"
		}
		return "", "", reject(http.StatusBadRequest, DetailsCodecError, why)
	}
	value = strings.Trim(string(line[colon+1:]), " \t")
	if !httpguts.ValidHeaderFieldValue(value) {
		return "", "", reject(http.StatusBadRequest, DetailsInvalidCharacters, "header "+strconv.Quote(truncate(name))+" has an invalid character in its value")
	}
	return name, value, nil
}

// framing decides how the body is delimited, refusing what RFC 9112 §6.3 makes ambiguous:
// Content-Length with Transfer-Encoding, a Transfer-Encoding other than a single
// "chunked", Content-Lengths that disagree or are not a number, a body on CONNECT.
func (h *Head) framing(cls, tes []string) *Rejection {
	h.Connect = h.Method == http.MethodConnect
	if len(cls) > 0 {
		for _, v := range cls {
			if v != cls[0] {
				return reject(http.StatusBadRequest, DetailsCodecError, "Content-Length headers disagree ("+strconv.Quote(truncate(cls[0]))+" and "+strconv.Quote(truncate(v))+")")
			}
		}
		n, ok := parseLength(cls[0])
		if !ok {
			return reject(http.StatusBadRequest, DetailsCodecError, "Content-Length "+strconv.Quote(truncate(cls[0]))+" is not a number of bytes")
		}
		h.ContentLength = n
	}
	if h.Connect && h.ContentLength > 0 {
		return reject(http.StatusBadRequest, DetailsBodyDisallowed, "a CONNECT request cannot have a body (Content-Length "+strconv.FormatInt(h.ContentLength, 10)+")")
	}
	if len(tes) == 0 {
		return nil
	}
	if len(cls) > 0 {
		return reject(http.StatusBadRequest, DetailsChunkedCL, "both Content-Length and Transfer-Encoding are set: the body's length would be read two ways")
	}
	if len(tes) > 1 || !strings.EqualFold(tes[0], "chunked") || h.Connect {
		why := "Transfer-Encoding " + strconv.Quote(truncate(strings.Join(tes, ", "))) + " is not supported (only a single \"chunked\")"
		if h.Connect {
			why = "a CONNECT request cannot have Transfer-Encoding"
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
	default:
		lower := strings.ToLower(t)
		if strings.HasPrefix(t, "/") || strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://") {
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
func checkHost(h *Head, hosts []string) *Rejection {
	switch {
	case len(hosts) > 1:
		return reject(http.StatusBadRequest, DetailsCodecError, "more than one Host header")
	case len(hosts) == 0 && h.Proto == "HTTP/1.1":
		return reject(http.StatusBadRequest, DetailsMissingHost, "an HTTP/1.1 request without a Host header")
	case len(hosts) == 1 && !httpguts.ValidHostHeader(hosts[0]):
		return reject(http.StatusBadRequest, DetailsInvalidAuthority, "invalid Host header "+strconv.Quote(truncate(hosts[0])))
	}
	return nil
}

func parseLength(v string) (int64, bool) {
	if v == "" || len(v) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		if !isDigit(v[i]) {
			return 0, false
		}
		n = n*10 + int64(v[i]-'0')
	}
	return n, true
}

func tokens(v string) []string {
	var out []string
	for t := range strings.SplitSeq(v, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

func hasToken(ts []string, want string) bool {
	for _, t := range ts {
		if strings.EqualFold(t, want) {
			return true
		}
	}
	return false
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !httpguts.IsTokenRune(rune(s[i])) {
			return false
		}
	}
	return true
}

func isTokenByte(c byte) bool { return httpguts.IsTokenRune(rune(c)) }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// truncate keeps what a message quotes short.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
