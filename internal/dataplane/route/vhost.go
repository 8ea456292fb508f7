package route

import (
	"net/http"
	"slices"
	"strings"

	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// Domain classes, best first: Envoy tries exact domains, then "*suffix" wildcards (longest
// suffix first), then "prefix*" wildcards (longest prefix first), then "*".
const (
	classExact = iota
	classSuffix
	classPrefix
	classAny
	classNone
)

// SelectVirtualHost picks the virtual host for a Host/:authority value as Envoy does: an
// exact domain (case-insensitive) first, then the longest suffix wildcard ("*.foo.com",
// "*-bar.com"), then the longest prefix wildcard ("foo.*"), then "*". A wildcard never
// matches an empty remainder: "*.foo.com" does not match ".foo.com". The host is compared as
// received, port included, unless rc ignores ports in host matching (hostport.go). It
// returns nil when nothing matches.
//
// SelectVirtualHost scans every domain and allocates nothing; Compile builds an index for
// route configs with many virtual hosts.
func SelectVirtualHost(rc *resource.RouteConfig, host string) *resource.VirtualHost {
	if rc == nil {
		return nil
	}
	host = matchedHost(rc, host)
	var best *resource.VirtualHost
	bestClass, bestLen := classNone, -1
	for i := range rc.VirtualHosts {
		vh := &rc.VirtualHosts[i]
		for _, d := range vh.Domains {
			class, n := domainMatch(d, host)
			switch {
			case class == classNone:
			case class == classExact:
				return vh
			case class < bestClass, class == bestClass && class != classAny && n > bestLen:
				best, bestClass, bestLen = vh, class, n
			}
		}
	}
	return best
}

// domainMatch says how domain d matches host: its class and the length of the literal part
// (the ordering key among wildcards). classNone when it does not match.
func domainMatch(d, host string) (class, n int) {
	switch {
	case d == "*":
		return classAny, 0
	case strings.HasPrefix(d, "*"):
		suf := d[1:]
		if len(suf) < len(host) && http1.EqualFoldASCII(host[len(host)-len(suf):], suf) {
			return classSuffix, len(suf)
		}
	case strings.HasSuffix(d, "*"):
		pre := d[:len(d)-1]
		if len(pre) < len(host) && http1.EqualFoldASCII(host[:len(pre)], pre) {
			return classPrefix, len(pre)
		}
	case http1.EqualFoldASCII(d, host):
		return classExact, len(d)
	}
	return classNone, 0
}

// Select returns the virtual host for r.Host and the first of its routes whose match
// accepts r. vh is nil when no virtual host matches; rt is nil when no route does.
func Select(rc *resource.RouteConfig, r *http.Request) (vh *resource.VirtualHost, rt *resource.Route) {
	return selectRoute(SelectVirtualHost(rc, r.Host), r)
}

func selectRoute(vh *resource.VirtualHost, r *http.Request) (*resource.VirtualHost, *resource.Route) {
	if vh == nil {
		return nil, nil
	}
	path := requestPath(r)
	for i := range vh.Routes {
		if matches(&vh.Routes[i].Match, r, path) {
			return vh, &vh.Routes[i]
		}
	}
	return vh, nil
}

// Table is a RouteConfig indexed for virtual host selection: a map of exact domains and the
// wildcards sorted by length. It selects exactly as SelectVirtualHost does. A Table is
// immutable and safe for concurrent use; build one per RouteConfig when it is installed.
type Table struct {
	rc       *resource.RouteConfig
	exact    map[string]*resource.VirtualHost // lower-cased domain → first virtual host
	suffixes []wildcard                       // longest first, then config order
	prefixes []wildcard                       // longest first, then config order
	any      *resource.VirtualHost
	// ignorePort is the route configuration's ignore_port_in_host_matching.
	ignorePort bool
}

type wildcard struct {
	lit string // lower-cased literal part
	vh  *resource.VirtualHost
}

// Compile indexes rc for Table.Select. rc must not change afterwards (resource values never do).
func Compile(rc *resource.RouteConfig) *Table {
	t := &Table{rc: rc, exact: map[string]*resource.VirtualHost{}}
	if rc == nil {
		return t
	}
	t.ignorePort = rc.IgnorePortInHostMatching
	for i := range rc.VirtualHosts {
		vh := &rc.VirtualHosts[i]
		for _, d := range vh.Domains {
			ld := lowerASCII(d)
			switch {
			case d == "*":
				if t.any == nil {
					t.any = vh
				}
			case strings.HasPrefix(d, "*"):
				t.suffixes = append(t.suffixes, wildcard{lit: ld[1:], vh: vh})
			case strings.HasSuffix(d, "*"):
				t.prefixes = append(t.prefixes, wildcard{lit: ld[:len(ld)-1], vh: vh})
			default:
				if _, dup := t.exact[ld]; !dup {
					t.exact[ld] = vh
				}
			}
		}
	}
	byLen := func(a, b wildcard) int { return len(b.lit) - len(a.lit) }
	slices.SortStableFunc(t.suffixes, byLen)
	slices.SortStableFunc(t.prefixes, byLen)
	return t
}

// Config returns the RouteConfig the table was built from.
func (t *Table) Config() *resource.RouteConfig { return t.rc }

// SelectVirtualHost is SelectVirtualHost on the indexed table. It allocates only when host
// has upper-case letters.
func (t *Table) SelectVirtualHost(host string) *resource.VirtualHost {
	if t.ignorePort {
		host = StripPort(host)
	}
	if vh, ok := t.exact[lowerASCII(host)]; ok {
		return vh
	}
	for _, w := range t.suffixes {
		if len(w.lit) < len(host) && http1.EqualFoldASCII(host[len(host)-len(w.lit):], w.lit) {
			return w.vh
		}
	}
	for _, w := range t.prefixes {
		if len(w.lit) < len(host) && http1.EqualFoldASCII(host[:len(w.lit)], w.lit) {
			return w.vh
		}
	}
	return t.any
}

// Select is Select on the indexed table.
func (t *Table) Select(r *http.Request) (vh *resource.VirtualHost, rt *resource.Route) {
	return selectRoute(t.SelectVirtualHost(r.Host), r)
}

// lowerASCII lower-cases ASCII letters, returning s itself when it has none.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && http1.EqualFoldASCII(s[:len(prefix)], prefix)
}
