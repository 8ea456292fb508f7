package analyze

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// unreachableRules is Istio's unreachable-rule analysis (run by its validation as
// warnings): IST0130 for a rule no request reaches (a rule without match before it, or
// all its matches used by prior rules), IST0131 for a match that repeats an earlier one
// or whose URI prefix an earlier prefix match covers.
func (a *analyzer) unreachableRules(o *config.Object, vs *networkingv1alpha3.VirtualService) {
	unused := func(field, rule, reason string) {
		m := a.reportf(o, "IST0130", Warning, field, "VirtualService rule %v not used (%s).", rule, reason)
		m.Fix = "move the rule up, give it other matches, or remove it"
	}
	ineffective := func(field, rule, match, dup string) {
		a.reportf(o, "IST0131", Info, field, "VirtualService rule %v match %v is not used (duplicate/overlapping match in rule %v).", rule, match, dup)
	}
	var prefixes []prefixMatch
	seen := map[int]int{} // index into matches → rule
	var matches []*networkingv1alpha3.HTTPMatchRequest
	emptyAt := -1
	for i, r := range vs.GetHttp() {
		if r == nil {
			continue
		}
		field := fmt.Sprintf("spec.http[%d]", i)
		if len(r.GetMatch()) == 0 {
			if emptyAt >= 0 {
				unused(field, httpRouteName(r, i), "only the last rule can have no matches")
			}
			emptyAt = i
			continue
		}
		dups := 0
		for j, mr := range r.GetMatch() {
			if emptyAt >= 0 {
				unused(field, httpRouteName(r, i), "route without matches defined before")
				continue
			}
			if k := indexOfMatch(matches, mr); k >= 0 {
				dup := seen[k]
				ineffective(fmt.Sprintf("%s.match[%d]", field, j), httpRouteName(r, i), httpMatchName(mr, j), httpRouteName(vs.GetHttp()[dup], dup))
				dups++
				continue
			}
			seen[len(matches)] = i
			matches = append(matches, mr)
			if p := newPrefixMatch(r, mr, i, j); p != nil {
				prefixes = append(prefixes, *p)
			}
		}
		if dups == len(r.GetMatch()) {
			unused(field, httpRouteName(r, i), "all matches used by prior rules")
		}
	}
	for i, p := range prefixes {
		for _, q := range prefixes[i+1:] {
			if q.prefix != p.prefix && p.covers(q) {
				ineffective(q.field, q.route, q.match+" of prefix "+q.prefix, p.match+" of prefix "+p.prefix+" on "+p.route)
			}
		}
	}
	a.unreachableL4(o, "tcp", len(vs.GetTcp()), func(i int) []proto.Message {
		var ms []proto.Message
		for _, m := range vs.GetTcp()[i].GetMatch() {
			ms = append(ms, m)
		}
		return ms
	}, unused, ineffective)
	a.unreachableL4(o, "tls", len(vs.GetTls()), func(i int) []proto.Message {
		var ms []proto.Message
		for _, m := range vs.GetTls()[i].GetMatch() {
			ms = append(ms, m)
		}
		return ms
	}, unused, ineffective)
}

// unreachableL4 is the same analysis for tcp and tls rules (no names, no prefixes).
func (a *analyzer) unreachableL4(_ *config.Object, kind string, n int, matchesOf func(int) []proto.Message,
	unused func(field, rule, reason string), ineffective func(field, rule, match, dup string),
) {
	var seen []proto.Message
	var seenRule []int
	emptyAt := -1
	for i := range n {
		field := fmt.Sprintf("spec.%s[%d]", kind, i)
		ms := matchesOf(i)
		if len(ms) == 0 {
			if emptyAt >= 0 {
				unused(field, fmt.Sprintf("#%d", i), "only the last rule can have no matches")
			}
			emptyAt = i
			continue
		}
		dups := 0
		for j, m := range ms {
			if emptyAt >= 0 {
				unused(field, fmt.Sprintf("#%d", i), "route without matches defined before")
				continue
			}
			k := -1
			for x, s := range seen {
				if proto.Equal(s, m) {
					k = x
					break
				}
			}
			if k >= 0 {
				ineffective(fmt.Sprintf("%s.match[%d]", field, j), fmt.Sprintf("#%d", i), fmt.Sprintf("#%d", j), fmt.Sprintf("#%d", seenRule[k]))
				dups++
				continue
			}
			seen, seenRule = append(seen, m), append(seenRule, i)
		}
		if dups == len(ms) {
			unused(field, fmt.Sprintf("#%d", i), "all matches used by prior rules")
		}
	}
}

func httpRouteName(r *networkingv1alpha3.HTTPRoute, i int) string {
	if r.GetName() != "" {
		return fmt.Sprintf("%q", r.GetName())
	}
	return fmt.Sprintf("#%d", i)
}

func httpMatchName(m *networkingv1alpha3.HTTPMatchRequest, j int) string {
	if m.GetName() != "" {
		return fmt.Sprintf("%q", m.GetName())
	}
	return fmt.Sprintf("#%d", j)
}

// indexOfMatch finds an equal match (names aside) among earlier ones.
func indexOfMatch(ms []*networkingv1alpha3.HTTPMatchRequest, m *networkingv1alpha3.HTTPMatchRequest) int {
	unnamed := func(x *networkingv1alpha3.HTTPMatchRequest) *networkingv1alpha3.HTTPMatchRequest {
		if x == nil || x.GetName() == "" {
			return x
		}
		c := proto.Clone(x).(*networkingv1alpha3.HTTPMatchRequest)
		c.Name = ""
		return c
	}
	want := unnamed(m)
	for i, x := range ms {
		if proto.Equal(unnamed(x), want) {
			return i
		}
	}
	return -1
}

// prefixMatch is a match with a URI prefix, reduced to what Istio compares to find a
// later prefix match an earlier one covers: each condition as "exact:v" or "prefix:v".
type prefixMatch struct {
	field, route, match string
	prefix              string
	port                uint32
	method, authority   string
	headers, query, not map[string]string
}

func newPrefixMatch(r *networkingv1alpha3.HTTPRoute, m *networkingv1alpha3.HTTPMatchRequest, i, j int) *prefixMatch {
	if m == nil || m.GetUri().GetPrefix() == "" {
		return nil
	}
	cond := func(s *networkingv1alpha3.StringMatch) string {
		switch {
		case s.GetExact() != "":
			return "exact:" + s.GetExact()
		case s.GetPrefix() != "":
			return "prefix:" + s.GetPrefix()
		}
		return ""
	}
	conds := func(ms map[string]*networkingv1alpha3.StringMatch) map[string]string {
		out := map[string]string{}
		for k, v := range ms {
			out[k] = cond(v)
		}
		return out
	}
	method := cond(m.GetMethod())
	if method == "" {
		method = "exact:GET" // as Istio assumes
	}
	return &prefixMatch{
		field: fmt.Sprintf("spec.http[%d].match[%d]", i, j), route: httpRouteName(r, i), match: httpMatchName(m, j),
		prefix: m.GetUri().GetPrefix(), port: m.GetPort(), method: method, authority: cond(m.GetAuthority()),
		headers: conds(m.GetHeaders()), query: conds(m.GetQueryParams()), not: conds(m.GetWithoutHeaders()),
	}
}

// covers is Istio's coveredValidation: q's prefix extends p's, and every other condition
// is equal or p's extends q's.
func (p prefixMatch) covers(q prefixMatch) bool {
	within := func(a, b string) bool { return a == b || strings.HasPrefix(a, b) }
	sameMaps := func(a, b map[string]string) bool {
		if len(a) != len(b) {
			return false
		}
		for k, v := range a {
			w, ok := b[k]
			if !ok || !within(v, w) {
				return false
			}
		}
		return true
	}
	return strings.HasPrefix(q.prefix, p.prefix) && q.port == p.port && within(p.method, q.method) &&
		within(p.authority, q.authority) && sameMaps(p.headers, q.headers) && sameMaps(p.query, q.query) && sameMaps(p.not, q.not)
}
