package pathnorm

import "strings"

// Character classes of the URL path canonicaliser Envoy runs for normalize_path (the
// googleurl copy of Chromium's url_canon_path): what happens to a byte met raw, and to the
// byte an escape sequence %XX stands for.
const (
	pass     = 0       // copied as is; when escaped, kept escaped
	special  = 1       // handled by the loop: '.', '\\', '%'
	escape   = 2 | 1   // percent-encoded in the output
	unescape = 4       // unreserved: an escape of it is decoded
	invalid  = 8 | 1   // NUL: the path is rejected
	dot      = special // '.'
)

var pathChars = func() (t [256]byte) {
	for i := range t {
		t[i] = escape // control characters and every byte >= 0x80
	}
	t[0] = invalid
	for _, c := range "!$&'()*+,/:;=@[]" {
		t[c] = pass
	}
	for _, c := range " \"#%<>?\\^`{|}\x7f" {
		t[c] = escape
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = unescape
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = unescape
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = unescape
	}
	for _, c := range "-_~" {
		t[c] = unescape
	}
	t['.'] = dot
	return t
}()

// canonicalPath is Envoy's PathUtil::canonicalPath: dot segments with parameters
// ("/..;x") stripped to plain dot segments, then the path part canonicalised; the query
// is kept as is. ok is false for a path Envoy rejects (an escaped NUL).
//
// Lucid goes one step further than Envoy: a dot segment with parameters that only appears
// once escapes are decoded ("/%2e%2e;/admin" canonicalises to "/..;/admin") is stripped and
// canonicalised again, so that the result is stable (normalising it again changes nothing)
// and "..;" cannot reach a backend that reads it as "..".
func canonicalPath(path string) (string, bool) {
	for range 3 {
		path = stripDotSegmentParameters(path)
		p, q := splitQuery(path)
		if isCanonical(p) {
			return path, true
		}
		out, ok := canonicalize(p)
		if !ok {
			return out + q, false
		}
		path = out + q
	}
	return path, true
}

// isCanonical reports, cheaply, that canonicalize would return p unchanged: it starts
// with '/', has no byte the canonicaliser rewrites and no segment that starts with a dot.
func isCanonical(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '.':
			if p[i-1] == '/' {
				return false
			}
		case pathChars[c]&special != 0:
			return false
		}
	}
	return true
}

// canonicalize is url::CanonicalizePath for an 8-bit path.
func canonicalize(p string) (string, bool) {
	out := make([]byte, 0, len(p)+8)
	if p == "" {
		return "/", true
	}
	if p[0] != '/' && p[0] != '\\' {
		out = append(out, '/')
	}
	ok := true
	for i := 0; i < len(p); i++ {
		c := p[i]
		flags := pathChars[c]
		if flags&special == 0 {
			out = append(out, c)
			continue
		}
		if n := dotLen(p, i); n > 0 {
			if len(out) == 0 || out[len(out)-1] != '/' {
				out = append(out, '.') // part of a name
				i += n - 1
				continue
			}
			kind, consumed := classifyAfterDot(p, i+n)
			switch kind {
			case notDirectory:
				out = append(out, '.')
				i += n - 1
			case directoryCur:
				i += n + consumed - 1
			case directoryUp:
				out = backUpToPreviousSlash(out)
				i += n + consumed - 1
			}
			continue
		}
		switch {
		case c == '\\':
			out = append(out, '/')
		case c == '%':
			v, valid := decodeEscaped(p, i)
			if !valid {
				out = append(out, '%') // not an escape: kept, as browsers do
				continue
			}
			i += 2
			switch f := pathChars[v]; {
			case f&unescape != 0:
				out = append(out, v)
			case f == invalid:
				out = append(out, '%', p[i-1], p[i])
				ok = false
			default: // kept escaped, hex digits untouched
				out = append(out, '%', p[i-1], p[i])
			}
		case flags == invalid:
			out = appendEscaped(out, c)
			ok = false
		case flags == escape:
			out = appendEscaped(out, c)
		}
	}
	return string(out), ok
}

type dotKind int

const (
	notDirectory dotKind = iota
	directoryCur
	directoryUp
)

// dotLen is 1 for '.', 3 for "%2e"/"%2E", else 0.
func dotLen(p string, i int) int {
	switch {
	case p[i] == '.':
		return 1
	case p[i] == '%' && i+3 <= len(p) && p[i+1] == '2' && (p[i+2] == 'e' || p[i+2] == 'E'):
		return 3
	}
	return 0
}

func isSlash(c byte) bool { return c == '/' || c == '\\' }

// classifyAfterDot says what the dot before position after is, and how many bytes after
// it the dot segment takes.
func classifyAfterDot(p string, after int) (dotKind, int) {
	if after == len(p) {
		return directoryCur, 0
	}
	if isSlash(p[after]) {
		return directoryCur, 1
	}
	if n := dotLen(p, after); n > 0 {
		next := after + n
		if next == len(p) {
			return directoryUp, n
		}
		if isSlash(p[next]) {
			return directoryUp, n + 1
		}
	}
	return notDirectory, 0
}

// backUpToPreviousSlash removes the last segment of out, which ends with '/', never going
// above the first slash.
func backUpToPreviousSlash(out []byte) []byte {
	i := len(out) - 1
	if i == 0 {
		return out
	}
	i--
	for out[i] != '/' && i > 0 {
		i--
	}
	return out[:i+1]
}

func decodeEscaped(p string, i int) (byte, bool) {
	if i+3 > len(p) {
		return 0, false
	}
	hi, ok1 := unhex(p[i+1])
	lo, ok2 := unhex(p[i+2])
	if !ok1 || !ok2 {
		return 0, false
	}
	return hi<<4 | lo, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func appendEscaped(out []byte, c byte) []byte {
	const hex = "0123456789ABCDEF"
	return append(out, '%', hex[c>>4], hex[c&15])
}

// stripDotSegmentParameters turns "..;params" and ".;params" segments into ".." and "."
// before canonicalisation (Envoy's fix for "/admin/..;/x" bypasses). The query and
// fragment are left alone.
func stripDotSegmentParameters(path string) string {
	end := len(path)
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		end = i
	}
	p := path[:end]
	if !strings.Contains(p, ".;") {
		return path
	}
	var b strings.Builder
	b.Grow(len(path))
	for i, seg := range strings.Split(p, "/") {
		if i > 0 {
			b.WriteByte('/')
		}
		switch {
		case strings.HasPrefix(seg, "..;"):
			seg = ".."
		case strings.HasPrefix(seg, ".;"):
			seg = "."
		}
		b.WriteString(seg)
	}
	b.WriteString(path[end:])
	return b.String()
}
