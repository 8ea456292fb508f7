package route

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// Matches reports whether one route match accepts the request, as Envoy's RouteMatch does:
//
//   - the path, without the query string and as sent (percent-encoded), by prefix, exact
//     path, regex (whole path) or path_separated_prefix, case-insensitively when
//     CaseSensitive is false (regexes ignore CaseSensitive);
//   - every header matcher: ":method", ":authority" (r.Host), ":path" (path and query),
//     ":scheme"; other names from r.Header, case-insensitively, several values joined with
//     ","; a missing header does not match a string matcher, and does match an inverted one;
//   - every query parameter matcher, on the first value of the parameter, percent-decoded.
//
// Matches allocates nothing in the common case (no ":path" matcher, single-valued headers).
func Matches(m *resource.RouteMatch, r *http.Request) bool {
	return matches(m, r, requestPath(r))
}

// matches is Matches with the request's path (requestPath) worked out by the caller: once
// for all the routes of a virtual host, not once per route.
func matches(m *resource.RouteMatch, r *http.Request, path string) bool {
	if !matchPath(m, path) {
		return false
	}
	for i := range m.Headers {
		if !matchHeader(&m.Headers[i], r) {
			return false
		}
	}
	for i := range m.QueryParams {
		if !matchQuery(&m.QueryParams[i], rawQuery(r)) {
			return false
		}
	}
	return true
}

func rawQuery(r *http.Request) string {
	if r.URL == nil {
		return ""
	}
	return r.URL.RawQuery
}

// requestPath is the request's path as sent, without the query string.
func requestPath(r *http.Request) string {
	if r.URL == nil {
		return "/"
	}
	p := r.URL.EscapedPath()
	if p == "" {
		return "/"
	}
	return p
}

// requestPathWithQuery is Envoy's :path: the path and the query string.
func requestPathWithQuery(r *http.Request) string {
	p := requestPath(r)
	if r.URL != nil && (r.URL.RawQuery != "" || r.URL.ForceQuery) {
		return p + "?" + r.URL.RawQuery
	}
	return p
}

// requestScheme is Envoy's :scheme for r.
func requestScheme(r *http.Request) string {
	if r.URL != nil && r.URL.Scheme != "" {
		return r.URL.Scheme
	}
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

func matchPath(m *resource.RouteMatch, path string) bool {
	switch m.PathKind {
	case resource.PathPrefix:
		if m.CaseSensitive {
			return strings.HasPrefix(path, m.Path)
		}
		return hasPrefixFold(path, m.Path)
	case resource.PathExact:
		if m.CaseSensitive {
			return path == m.Path
		}
		return http1.EqualFoldASCII(path, m.Path)
	case resource.PathRegex:
		return m.Regex != nil && m.Regex.MatchString(path)
	case resource.PathSeparated:
		if m.CaseSensitive {
			if !strings.HasPrefix(path, m.Path) {
				return false
			}
		} else if !hasPrefixFold(path, m.Path) {
			return false
		}
		return len(path) == len(m.Path) || path[len(m.Path)] == '/'
	}
	return false
}

// headerValue returns the value a header matcher sees: pseudo-headers from the request
// line, others joined with ",". ok is false when the header is absent.
func headerValue(r *http.Request, name string) (v string, ok bool) {
	switch name {
	case ":method":
		return r.Method, true
	case ":authority", "host":
		return r.Host, r.Host != ""
	case ":path":
		return requestPathWithQuery(r), true
	case ":scheme":
		return requestScheme(r), true
	}
	vs, ok := lookupHeader(r.Header, name)
	switch {
	case !ok:
		return "", false
	case len(vs) == 1:
		return vs[0], true
	default:
		return strings.Join(vs, ","), true
	}
}

// lookupHeader finds a header by name, case-insensitively, without allocating: first by
// its canonical form (built on the stack), then by comparing every key (for headers set
// in the map directly with another case).
func lookupHeader(h http.Header, name string) ([]string, bool) {
	if vs, ok := h[name]; ok {
		return vs, true
	}
	var buf [64]byte
	if len(name) <= len(buf) {
		b := buf[:len(name)]
		upper := true
		for i := 0; i < len(name); i++ {
			c := name[i]
			switch {
			case upper && 'a' <= c && c <= 'z':
				c -= 'a' - 'A'
			case !upper && 'A' <= c && c <= 'Z':
				c += 'a' - 'A'
			}
			b[i] = c
			upper = c == '-'
		}
		if vs, ok := h[string(b)]; ok {
			return vs, true
		}
	}
	for k, vs := range h {
		if http1.EqualFoldASCII(k, name) {
			return vs, true
		}
	}
	return nil, false
}

func matchHeader(hm *resource.HeaderMatcher, r *http.Request) bool {
	v, ok := headerValue(r, hm.Name)
	if hm.Present {
		return ok != hm.Invert
	}
	if !ok && hm.TreatMissingAsEmpty {
		v, ok = "", true
	}
	if !ok {
		return hm.Invert
	}
	return MatchString(&hm.Value, v) != hm.Invert
}

// MatchString is type.matcher.v3.StringMatcher (ignore_case folds ASCII only, as Envoy).
// The gateway's certificate SAN checks use it too.
func MatchString(sm *resource.StringMatcher, v string) bool {
	switch sm.Kind {
	case resource.MatchExact:
		if sm.IgnoreCase {
			return http1.EqualFoldASCII(v, sm.Value)
		}
		return v == sm.Value
	case resource.MatchPrefix:
		if sm.IgnoreCase {
			return hasPrefixFold(v, sm.Value)
		}
		return strings.HasPrefix(v, sm.Value)
	case resource.MatchSuffix:
		if sm.IgnoreCase {
			return len(v) >= len(sm.Value) && http1.EqualFoldASCII(v[len(v)-len(sm.Value):], sm.Value)
		}
		return strings.HasSuffix(v, sm.Value)
	case resource.MatchContains:
		if sm.IgnoreCase {
			return containsFold(v, sm.Value)
		}
		return strings.Contains(v, sm.Value)
	case resource.MatchRegex:
		return sm.Regex != nil && sm.Regex.MatchString(v)
	}
	return false
}

func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if http1.EqualFoldASCII(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// queryValue returns the first value of query parameter name in rawQuery, percent-decoded
// as Envoy decodes it ("+" stays "+"). A parameter without "=" has the value "".
func queryValue(rawQuery, name string) (string, bool) {
	for q := rawQuery; q != ""; {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		k, v, _ := strings.Cut(kv, "=")
		if k == "" {
			continue
		}
		if strings.IndexByte(k, '%') >= 0 {
			if dk, err := url.PathUnescape(k); err == nil {
				k = dk
			}
		}
		if k != name {
			continue
		}
		if strings.IndexByte(v, '%') >= 0 {
			if dv, err := url.PathUnescape(v); err == nil {
				v = dv
			}
		}
		return v, true
	}
	return "", false
}

func matchQuery(qm *resource.QueryParamMatcher, rawQuery string) bool {
	v, ok := queryValue(rawQuery, qm.Name)
	if !ok {
		return false
	}
	if qm.Present {
		return true
	}
	return MatchString(&qm.Value, v)
}
