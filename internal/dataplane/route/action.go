package route

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// PickCluster returns the target of a route action: Cluster, or one of WeightedClusters
// chosen by cumulative weight (weights are relative; zero-weight entries are never chosen).
// rnd(n) must return a uniform value in [0,n), e.g. math/rand/v2.Uint64N. wc is the chosen
// entry (its header operations and host rewrite apply), nil for a plain Cluster. name is ""
// when the action has no cluster or every weight is 0.
func PickCluster(a *resource.RouteAction, rnd func(n uint64) uint64) (name string, wc *resource.WeightedCluster) {
	if a == nil {
		return "", nil
	}
	if len(a.WeightedClusters) == 0 {
		return a.Cluster, nil
	}
	var total uint64
	for i := range a.WeightedClusters {
		total += uint64(a.WeightedClusters[i].Weight)
	}
	if total == 0 {
		return "", nil
	}
	x := rnd(total)
	var cum uint64
	for i := range a.WeightedClusters {
		w := &a.WeightedClusters[i]
		cum += uint64(w.Weight)
		if x < cum {
			return w.Name, w
		}
	}
	// Unreachable with a correct rnd; stay in range anyway.
	for i := len(a.WeightedClusters) - 1; i >= 0; i-- {
		if w := &a.WeightedClusters[i]; w.Weight > 0 {
			return w.Name, w
		}
	}
	return "", nil
}

// RewritePath returns the upstream :path, query string kept, after the action's rewrite:
//
//   - prefix_rewrite replaces the matched prefix for prefix and path_separated_prefix
//     matches, and the whole path for exact and regex matches (as Envoy does);
//   - regex_rewrite replaces every match of the pattern in the path (without the query),
//     with \1-style group references in the substitution.
//
// The path is unchanged when neither is set.
func RewritePath(m *resource.RouteMatch, a *resource.RouteAction, pathWithQuery string) string {
	if a == nil {
		return pathWithQuery
	}
	switch {
	case a.PrefixRewrite != "":
		return prefixRewrite(m, a.PrefixRewrite, pathWithQuery)
	case a.RegexRewrite != nil && a.RegexRewrite.Pattern != nil:
		path, query := splitQuery(pathWithQuery)
		return a.RegexRewrite.Pattern.ReplaceAllString(path, goTemplate(a.RegexRewrite.Substitution)) + query
	}
	return pathWithQuery
}

// prefixRewrite replaces the part of pathWithQuery that m matched with rewrite.
func prefixRewrite(m *resource.RouteMatch, rewrite, pathWithQuery string) string {
	path, query := splitQuery(pathWithQuery)
	if m != nil && (m.PathKind == resource.PathPrefix || m.PathKind == resource.PathSeparated) {
		if len(m.Path) > len(path) {
			return pathWithQuery // the route did not match this path
		}
		return rewrite + path[len(m.Path):] + query
	}
	return rewrite + query
}

// splitQuery splits "/p?q" into "/p" and "?q".
func splitQuery(pathWithQuery string) (path, query string) {
	if i := strings.IndexByte(pathWithQuery, '?'); i >= 0 {
		return pathWithQuery[:i], pathWithQuery[i:]
	}
	return pathWithQuery, ""
}

// goTemplate turns an RE2 substitution (\0..\9 group references, \\ for a backslash) into
// a regexp.Expand template ($ escaped as $$).
func goTemplate(sub string) string {
	if !strings.ContainsAny(sub, `\$`) {
		return sub
	}
	var b strings.Builder
	for i := 0; i < len(sub); i++ {
		c := sub[i]
		switch {
		case c == '$':
			b.WriteString("$$")
		case c == '\\' && i+1 < len(sub) && sub[i+1] >= '0' && sub[i+1] <= '9':
			b.WriteString("${")
			b.WriteByte(sub[i+1])
			b.WriteByte('}')
			i++
		case c == '\\' && i+1 < len(sub) && sub[i+1] == '\\':
			b.WriteByte('\\')
			i++
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// RedirectLocation builds the Location header of a redirect route, as Envoy does:
//
//   - scheme: rd.Scheme, else scheme (the request's);
//   - host: rd.Host, else the request's Host, whose port is dropped when rd.Port is set, or
//     when the scheme changes and the port is the old scheme's default (:80 for http, :443
//     for https); then ":<rd.Port>" when set;
//   - path: rd.Path (with its own query string if it has one, which strip_query keeps),
//     else the request path with rd.PrefixRewrite applied as RewritePath does; then
//     strip_query drops the request's query string.
func RedirectLocation(m *resource.RouteMatch, rd *resource.Redirect, r *http.Request, scheme string) string {
	finalScheme := scheme
	if rd.Scheme != "" {
		finalScheme = rd.Scheme
	}
	port := ""
	if rd.Port != 0 {
		port = ":" + strconv.FormatUint(uint64(rd.Port), 10)
	}
	host := rd.Host
	if host == "" {
		host = redirectHost(r.Host, scheme, finalScheme, port != "")
	}

	orig := requestPathWithQuery(r)
	path, keepQuery := orig, false
	switch {
	case rd.Path != "":
		path = rd.Path
		if strings.IndexByte(rd.Path, '?') >= 0 {
			keepQuery = true
		} else {
			_, q := splitQuery(orig)
			path += q
		}
	case rd.PrefixRewrite != "":
		path = prefixRewrite(m, rd.PrefixRewrite, orig)
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	if rd.StripQuery && !keepQuery {
		path, _ = splitQuery(path)
	}
	return finalScheme + "://" + host + port + path
}

// redirectHost is the request host for a redirect Location, without its port when a port
// redirect replaces it or when the scheme changes away from the port's default.
func redirectHost(host, oldScheme, newScheme string, portRedirect bool) string {
	end := -1
	if strings.HasPrefix(host, "[") {
		if i := strings.LastIndex(host, "]:"); i >= 0 {
			end = i + 1
		}
	} else {
		end = strings.LastIndexByte(host, ':')
	}
	if end < 0 {
		return host
	}
	p := host[end:]
	drop := portRedirect
	if newScheme != oldScheme {
		drop = drop || (oldScheme == "https" && p == ":443") || (oldScheme == "http" && p == ":80")
	}
	if drop {
		return host[:end]
	}
	return host
}

// ApplyHeaders applies one header operation list: it deletes every name in remove, then
// applies add in order, appending (Append) or replacing the value. Like Envoy with
// keep_empty_value unset, an entry with an empty value is skipped. Pseudo-headers (":...")
// are skipped: the authority is rewritten by forward, not here.
//
// Values are used literally: Envoy command operators such as %DOWNSTREAM_REMOTE_ADDRESS%
// or %REQ(x-foo)% are not expanded (Istio emits them only for features Lucid does not run).
func ApplyHeaders(h http.Header, add []resource.HeaderValueOption, remove []string) {
	for _, name := range remove {
		if !strings.HasPrefix(name, ":") {
			h.Del(name)
		}
	}
	for _, o := range add {
		if o.Value == "" || o.Key == "" || strings.HasPrefix(o.Key, ":") {
			continue
		}
		if o.Append {
			h.Add(o.Key, o.Value)
		} else {
			h.Set(o.Key, o.Value)
		}
	}
}
