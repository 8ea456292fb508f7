// Package requesturi parses a request's target into a url.URL, as url.ParseRequestURI
// does, without allocating for the usual target: a path of bytes that stand for
// themselves, with at most a query.
//
// It sits at the very start of the request path, in the proxy's HTTP servers: h1server
// parses the request line's target with it and h2server the :path pseudo-header, each
// into a url.URL that shares the request's own allocation. Anything else (percent
// escapes, bytes url's escaping would change, absolute form, "*", CONNECT authorities)
// goes to url.ParseRequestURI, so the result is always what net/http's servers give.
package requesturi

import "net/url"

// Parse returns url.ParseRequestURI(target). When target is a plain path (below) it is
// written into u, which is returned; otherwise u is left alone and a new URL returned.
func Parse(target string, u *url.URL) (*url.URL, error) {
	if target == "" || target[0] != '/' {
		return url.ParseRequestURI(target)
	}
	q := len(target)
	for i := 1; i < len(target); i++ {
		b := target[i]
		if b == '?' {
			q = i
			break
		}
		if !plainPathByte(b) {
			return url.ParseRequestURI(target)
		}
	}
	for i := q + 1; i < len(target); i++ {
		if b := target[i]; b < 0x21 || b > 0x7e || b == '#' {
			return url.ParseRequestURI(target)
		}
	}
	*u = url.URL{Path: target[:q]}
	if q < len(target) {
		u.RawQuery = target[q+1:]
		u.ForceQuery = u.RawQuery == ""
	}
	return u, nil
}

// plainPathByte reports whether b stands for itself in a path: url's path escaping
// leaves it alone, so the path needs no RawPath. Sub-delimiters such as the exclamation
// mark, parentheses, asterisk and apostrophe are not among them: url escapes them, so a
// path holding them keeps its spelling in RawPath, which only url.ParseRequestURI sets.
func plainPathByte(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	switch b {
	case '/', '-', '.', '_', '~', '$', '&', '+', ',', ';', '=', ':', '@':
		return true
	}
	return false
}
