// Package pathnorm normalises a request's :path the way Envoy's HTTP connection manager
// does before routing, authorization and forwarding (normalize_path, merge_slashes,
// path_with_escaped_slashes_action), so that "/admin/../admin", "/a//b", "\admin" or
// "%2F" cannot make a request look like another one to an AuthorizationPolicy.
//
// It sits at the very start of the request path, before anything reads the path:
//
//	request → pathnorm.Normalize → route, rbac (policy match), forward (sent upstream)
//
// Istio chooses the settings from meshConfig.pathNormalization (ForMode). The package is
// pure: no I/O, no state; a path that needs no change is returned without allocating.
package pathnorm

import "strings"

// Mode is Istio's meshConfig.pathNormalization.normalization.
type Mode int

// Istio's normalisation modes. Base is Istio's default (DEFAULT means BASE).
const (
	Base                  Mode = iota // RFC 3986 (Envoy's normalize_path), backslash to slash
	None                              // nothing: the path is matched and forwarded as received
	MergeSlashes                      // Base, then "//" merged
	DecodeAndMergeSlashes             // %2F/%5C decoded, then MergeSlashes
)

// EscapedSlashes is the HCM's path_with_escaped_slashes_action: what to do with %2F, %2f,
// %5C and %5c in the path.
type EscapedSlashes int

// The actions, as Envoy names them.
const (
	KeepUnchanged       EscapedSlashes = iota // leave them escaped (Envoy's default)
	RejectRequest                             // 400
	UnescapeAndRedirect                       // decode, then answer 307 with the decoded path
	UnescapeAndForward                        // decode and carry on with the decoded path
)

// Options are the HTTP connection manager's normalisation settings.
type Options struct {
	NormalizePath  bool           // normalize_path
	MergeSlashes   bool           // merge_slashes
	EscapedSlashes EscapedSlashes // path_with_escaped_slashes_action
}

// ForMode returns the HCM settings Istio generates for a normalisation mode.
func ForMode(m Mode) Options {
	switch m {
	case None:
		return Options{}
	case MergeSlashes:
		return Options{NormalizePath: true, MergeSlashes: true}
	case DecodeAndMergeSlashes:
		return Options{NormalizePath: true, MergeSlashes: true, EscapedSlashes: UnescapeAndForward}
	default:
		return Options{NormalizePath: true}
	}
}

// Action says what happens to the request after normalisation.
type Action int

// The outcomes of Normalize.
const (
	Continue Action = iota // carry on with the returned path
	Reject                 // 400, empty body, details path_normalization_failed
	Redirect               // 307 to the returned path, details path_normalization_failed
)

// Details is Envoy's response_code_details for a rejected or redirected path.
const Details = "path_normalization_failed"

// Status is the HTTP status of the local reply for a (the redirect of a gRPC request is a
// reject: gRPC clients do not follow redirects). 0 for Continue.
func (a Action) Status(grpc bool) int {
	switch {
	case a == Reject, a == Redirect && grpc:
		return 400
	case a == Redirect:
		return 307
	}
	return 0
}

// Normalize applies o to path (the :path pseudo-header: path, query and possibly a
// fragment) in Envoy's order: a fragment rejects the request; escaped slashes are handled;
// the path is canonicalised (RFC 3986 dot segments, %2E as a dot, backslash as slash,
// unreserved characters decoded, %00 rejected); slashes are merged. The query is never
// changed. Reject means the returned path is meaningless.
func Normalize(path string, o Options) (string, Action) {
	if strings.IndexByte(path, '#') >= 0 {
		return path, Reject
	}
	action := Continue
	if o.EscapedSlashes != KeepUnchanged {
		var found bool
		path, found = unescapeSlashes(path)
		if found {
			switch o.EscapedSlashes {
			case RejectRequest:
				return path, Reject
			case UnescapeAndRedirect:
				action = Redirect
			}
		}
	}
	if o.NormalizePath {
		var ok bool
		if path, ok = canonicalPath(path); !ok {
			return path, Reject
		}
	}
	if o.MergeSlashes {
		path = mergeSlashes(path)
	}
	return path, action
}

// Strip returns path without its query and fragment: what Envoy's url_path and uri
// template matchers compare (Istio's paths and notPaths).
func Strip(path string) string {
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		return path[:i]
	}
	return path
}

// splitQuery splits path at the first '?'.
func splitQuery(path string) (p, query string) {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		return path[:i], path[i:]
	}
	return path, ""
}

// unescapeSlashes decodes %2F, %2f, %5C and %5c in the path part; found reports whether
// there was one.
func unescapeSlashes(path string) (string, bool) {
	p, q := splitQuery(path)
	if strings.IndexByte(p, '%') < 0 {
		return path, false
	}
	var b strings.Builder
	found := false
	for i := 0; i < len(p); i++ {
		if c := escapedSlash(p, i); c != 0 {
			if !found {
				b.Grow(len(path))
				b.WriteString(p[:i])
				found = true
			}
			b.WriteByte(c)
			i += 2
			continue
		}
		if found {
			b.WriteByte(p[i])
		}
	}
	if !found {
		return path, false
	}
	b.WriteString(q)
	return b.String(), true
}

// escapedSlash is '/' or '\\' when p[i:] starts with their escape, else 0.
func escapedSlash(p string, i int) byte {
	if p[i] != '%' || i+2 >= len(p) {
		return 0
	}
	switch {
	case p[i+1] == '2' && (p[i+2] == 'F' || p[i+2] == 'f'):
		return '/'
	case p[i+1] == '5' && (p[i+2] == 'C' || p[i+2] == 'c'):
		return '\\'
	}
	return 0
}

// mergeSlashes collapses runs of '/' in the path part as Envoy does: the non-empty
// segments joined by '/', with the leading and the trailing '/' kept.
func mergeSlashes(path string) string {
	p, q := splitQuery(path)
	if !strings.Contains(p, "//") {
		return path
	}
	var b strings.Builder
	b.Grow(len(path))
	if strings.HasPrefix(p, "/") {
		b.WriteByte('/')
	}
	first := true
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "" {
			continue
		}
		if !first {
			b.WriteByte('/')
		}
		first = false
		b.WriteString(seg)
	}
	if strings.HasSuffix(p, "/") {
		b.WriteByte('/')
	}
	b.WriteString(q)
	return b.String()
}
