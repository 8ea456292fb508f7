package route

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// Verdict explains one route's outcome for one request, for NR explanations and `lucid why`.
type Verdict struct {
	Route   *resource.Route
	Matched bool
	// Reason is "matched", or the first part of the match that failed, e.g.
	// `path "/ratings" does not start with "/reviews"`,
	// `header ":method" is "POST", wants exact "GET"`, `header "end-user" is missing`.
	Reason string
}

// Explain returns one Verdict per route of vh, in order, stopping after the first route
// that matches. It agrees with Matches.
func Explain(vh *resource.VirtualHost, r *http.Request) []Verdict {
	if vh == nil {
		return nil
	}
	out := make([]Verdict, 0, len(vh.Routes))
	for i := range vh.Routes {
		rt := &vh.Routes[i]
		reason := whyNot(&rt.Match, r)
		out = append(out, Verdict{Route: rt, Matched: reason == "", Reason: reason})
		if reason == "" {
			out[len(out)-1].Reason = "matched"
			break
		}
	}
	return out
}

// whyNot returns why m does not accept r, or "" when it does.
func whyNot(m *resource.RouteMatch, r *http.Request) string {
	path := requestPath(r)
	if !matchPath(m, path) {
		return pathReason(m, path)
	}
	for i := range m.Headers {
		if hm := &m.Headers[i]; !matchHeader(hm, r) {
			return headerReason(hm, r)
		}
	}
	for i := range m.QueryParams {
		if qm := &m.QueryParams[i]; !matchQuery(qm, rawQuery(r)) {
			return queryReason(qm, rawQuery(r))
		}
	}
	return ""
}

func pathReason(m *resource.RouteMatch, path string) string {
	fold := ""
	if !m.CaseSensitive {
		fold = " (ignoring case)"
	}
	p := quote(path)
	switch m.PathKind {
	case resource.PathPrefix:
		return fmt.Sprintf("path %s does not start with %s%s", p, quote(m.Path), fold)
	case resource.PathExact:
		return fmt.Sprintf("path %s is not %s%s", p, quote(m.Path), fold)
	case resource.PathRegex:
		re := "<nil>"
		if m.Regex != nil {
			re = m.Regex.String()
		}
		return fmt.Sprintf("path %s does not match regex %s", p, quote(re))
	case resource.PathSeparated:
		return fmt.Sprintf("path %s is not %s and does not start with %s%s", p, quote(m.Path), quote(m.Path+"/"), fold)
	}
	return fmt.Sprintf("path %s: unknown path match kind %d", p, m.PathKind)
}

func headerReason(hm *resource.HeaderMatcher, r *http.Request) string {
	v, ok := headerValue(r, hm.Name)
	if !ok && hm.TreatMissingAsEmpty && !hm.Present {
		v, ok = "", true
	}
	name := quote(hm.Name)
	switch {
	case hm.Present && hm.Invert:
		return fmt.Sprintf("header %s is present, wants it absent", name)
	case !ok:
		return fmt.Sprintf("header %s is missing", name)
	case hm.Present:
		return fmt.Sprintf("header %s is missing", name) // unreachable: present and ok matches
	}
	not := ""
	if hm.Invert {
		not = "not "
	}
	return fmt.Sprintf("header %s is %s, wants %s%s", name, quote(v), not, describe(&hm.Value))
}

func queryReason(qm *resource.QueryParamMatcher, rawQuery string) string {
	v, ok := queryValue(rawQuery, qm.Name)
	if !ok {
		return fmt.Sprintf("query parameter %s is missing", quote(qm.Name))
	}
	return fmt.Sprintf("query parameter %s is %s, wants %s", quote(qm.Name), quote(v), describe(&qm.Value))
}

// describe renders a StringMatcher: `exact "GET"`, `prefix "/v1" (ignoring case)`.
func describe(sm *resource.StringMatcher) string {
	var s string
	switch sm.Kind {
	case resource.MatchExact:
		s = "exact " + quote(sm.Value)
	case resource.MatchPrefix:
		s = "prefix " + quote(sm.Value)
	case resource.MatchSuffix:
		s = "suffix " + quote(sm.Value)
	case resource.MatchContains:
		s = "contains " + quote(sm.Value)
	case resource.MatchRegex:
		re := "<nil>"
		if sm.Regex != nil {
			re = sm.Regex.String()
		}
		return "regex " + quote(re)
	default:
		return "unknown matcher " + strconv.Itoa(int(sm.Kind))
	}
	if sm.IgnoreCase {
		s += " (ignoring case)"
	}
	return s
}

// maxQuoted bounds request-controlled strings in explanations.
const maxQuoted = 100

// quote quotes s as Go does (escaping anything unprintable, so the result fits on one
// header line), shortened to maxQuoted bytes.
func quote(s string) string {
	if len(s) > maxQuoted {
		return strconv.Quote(s[:maxQuoted]) + "…"
	}
	return strconv.Quote(s)
}

// shorten bounds an already escaped string (a request path) to maxQuoted bytes.
func shorten(s string) string {
	if len(s) > maxQuoted {
		return s[:maxQuoted] + "…"
	}
	return s
}

// maxExplained is how many routes NoRouteExplanation describes before "and N more".
const maxExplained = 5

// NoRouteExplanation explains an NR response (the x-lucid-error after its "NR: " prefix,
// which forward.LucidError adds). vh is the virtual host Select chose, nil when none matched:
//
//	no virtual host for authority "x:1" in route config "9080"
//	no route matches GET /foo in virtual host "reviews:9080" (route config "9080"): route "r1": path "/foo" does not start with "/v1"; route "r2": ...; and 3 more
func NoRouteExplanation(rc *resource.RouteConfig, vh *resource.VirtualHost, r *http.Request) string {
	rcName := ""
	if rc != nil {
		rcName = rc.Name
	}
	if vh == nil {
		s := fmt.Sprintf("no virtual host for authority %s in route config %s", quote(r.Host), quote(rcName))
		if host, _, err := net.SplitHostPort(r.Host); err == nil && host != "" {
			if alt := SelectVirtualHost(rc, host); alt != nil {
				s += fmt.Sprintf(" (without the port, %s would match virtual host %s)", quote(host), quote(alt.Name))
			}
		}
		return s
	}
	var b strings.Builder
	fmt.Fprintf(&b, "no route matches %s %s in virtual host %s (route config %s)",
		r.Method, shorten(requestPath(r)), quote(vh.Name), quote(rcName))
	if len(vh.Routes) == 0 {
		b.WriteString(": it has no routes")
		return b.String()
	}
	b.WriteString(": ")
	for i := range vh.Routes {
		if i == maxExplained {
			fmt.Fprintf(&b, "; and %d more", len(vh.Routes)-maxExplained)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		rt := &vh.Routes[i]
		reason := whyNot(&rt.Match, r)
		if reason == "" {
			reason = "matched" // the caller's Select disagrees; say so rather than hide it
		}
		fmt.Fprintf(&b, "%s: %s", routeLabel(rt, i), reason)
	}
	return b.String()
}

// routeLabel names a route for explanations: `route "r1"`, or `route #2` when unnamed.
func routeLabel(rt *resource.Route, i int) string {
	if rt.Name != "" {
		return "route " + quote(rt.Name)
	}
	return "route #" + strconv.Itoa(i+1)
}
