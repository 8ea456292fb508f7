package forward

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/lucid-mesh/lucid/internal/dataplane/pathnorm"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// Path normalisation at request entry: the connection manager's normalize_path,
// merge_slashes and path_with_escaped_slashes_action (Istio's meshConfig.pathNormalization)
// applied before routing, authorization and forwarding, so "/api/../admin" is routed,
// authorized and sent upstream as "/admin", never as received.

// PathOptions are the normaliser's settings of a connection manager (the zero Options,
// nothing changed, without one).
func PathOptions(h *resource.HTTPManager) pathnorm.Options {
	if h == nil {
		return pathnorm.Options{}
	}
	o := pathnorm.Options{NormalizePath: h.NormalizePath, MergeSlashes: h.MergeSlashes}
	switch h.EscapedSlashes {
	case resource.EscapedSlashesReject:
		o.EscapedSlashes = pathnorm.RejectRequest
	case resource.EscapedSlashesUnescapeAndRedirect:
		o.EscapedSlashes = pathnorm.UnescapeAndRedirect
	case resource.EscapedSlashesUnescapeAndForward:
		o.EscapedSlashes = pathnorm.UnescapeAndForward
	}
	return o
}

// requestPath is the request's :path as received: the escaped path and the query.
func requestPath(u *url.URL) string {
	p := u.EscapedPath()
	if u.RawQuery != "" || u.ForceQuery {
		p += "?" + u.RawQuery
	}
	return p
}

// NormalizeRequest normalises r's path with o. It returns the request to go on with (r
// itself when the path is already normal, else a shallow copy with the normalised URL:
// the server's request is not modified) or the reply that ends it: 400 for a path Envoy
// rejects, 307 to the decoded path for UNESCAPE_AND_REDIRECT (400 for gRPC), with details
// path_normalization_failed and no response flag. `lucid why` calls it too.
func NormalizeRequest(r *http.Request, o pathnorm.Options, grpc bool) (*http.Request, *Reply) {
	if o == (pathnorm.Options{}) || r.URL == nil || r.URL.Opaque != "" || r.Method == http.MethodConnect {
		return r, nil
	}
	// The common case, a path already normal, without building the path and query (the
	// query is never changed).
	if ep := r.URL.EscapedPath(); strings.HasPrefix(ep, "/") {
		if pp, act := pathnorm.Normalize(ep, o); act == pathnorm.Continue && pp == ep {
			return r, nil
		}
	}
	raw := requestPath(r.URL)
	p, act := pathnorm.Normalize(raw, o)
	if act == pathnorm.Continue && p == raw {
		return r, nil
	}
	var u *url.URL
	if act != pathnorm.Reject {
		var err error
		if u, err = url.ParseRequestURI(p); err != nil {
			act = pathnorm.Reject
		}
	}
	switch act {
	case pathnorm.Reject:
		return r, &Reply{Status: http.StatusBadRequest, Details: pathnorm.Details,
			Explanation: "path " + strconv.Quote(raw) + " refused by path normalisation: " + rejectReason(raw, o)}
	case pathnorm.Redirect:
		rp := &Reply{Status: pathnorm.Redirect.Status(grpc), Details: pathnorm.Details,
			Explanation: "path " + strconv.Quote(raw) + " has an escaped slash (%2F or %5C) and path_with_escaped_slashes_action is UNESCAPE_AND_REDIRECT: redirected to " + strconv.Quote(p)}
		if rp.Status == http.StatusTemporaryRedirect {
			rp.Location = p
		}
		return r, rp
	}
	nu := *r.URL
	nu.Path, nu.RawPath, nu.RawQuery, nu.ForceQuery = u.Path, u.RawPath, u.RawQuery, u.ForceQuery
	r2 := *r // a shallow copy sharing the body, as http.Request.WithContext makes
	r2.URL = &nu
	r2.RequestURI = p
	return &r2, nil
}

// rejectReason says why Normalize rejected raw.
func rejectReason(raw string, o pathnorm.Options) string {
	switch {
	case strings.IndexByte(raw, '#') >= 0:
		return "a fragment (#) is not allowed in a request path"
	case o.EscapedSlashes == pathnorm.RejectRequest && hasEscapedSlash(raw):
		return "an escaped slash (%2F or %5C) and path_with_escaped_slashes_action is REJECT_REQUEST"
	case strings.Contains(raw, "%00"):
		return "an escaped NUL (%00) is not allowed in a request path"
	}
	return "the normalised path is not a valid request path"
}

func hasEscapedSlash(p string) bool {
	l := strings.ToLower(pathnorm.Strip(p))
	return strings.Contains(l, "%2f") || strings.Contains(l, "%5c")
}

// normalizePath runs NormalizeRequest on the exchange: false when the request has been
// answered. The access log then shows the normalised path, as Envoy's %REQ(:PATH)% does.
func (x *exchange) normalizePath() bool {
	r, rp := NormalizeRequest(x.r, PathOptions(x.in.HTTP), x.isGRPC())
	if rp != nil {
		x.localReply(rp, nil)
		return false
	}
	if r != x.r {
		x.r = r
		x.info.Path = r.RequestURI
		x.pathURL = nil // prepare works the upstream path out from the normalised URL
	}
	return true
}
