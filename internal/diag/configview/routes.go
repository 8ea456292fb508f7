package configview

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// RouteFilter selects route configurations by name.
type RouteFilter struct{ Name string }

// SortedRoutes returns the route configurations that pass f: numeric names (outbound
// ports) first in numeric order, then the others by name.
func SortedRoutes(s *resource.Snapshot, f RouteFilter) []*resource.RouteConfig {
	var out []*resource.RouteConfig
	for _, rc := range s.Routes {
		if f.Name == "" || rc.Name == f.Name {
			out = append(out, rc)
		}
	}
	slices.SortFunc(out, func(a, b *resource.RouteConfig) int {
		na, ea := strconv.Atoi(a.Name)
		nb, eb := strconv.Atoi(b.Name)
		switch {
		case ea == nil && eb == nil:
			return cmp.Compare(na, nb)
		case ea == nil:
			return -1
		case eb == nil:
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// Routes prints `proxy-config routes`: one row per route of every virtual host,
//
//	NAME  VHOST NAME  DOMAINS  MATCH  VIRTUAL SERVICE
//
// or, short: NAME VIRTUAL HOSTS. A virtual host without routes shows "/*" and "404".
func Routes(w io.Writer, s *resource.Snapshot, f RouteFilter, short bool) error {
	tw := newTable(w, 5)
	if short {
		row(tw, "NAME", "VIRTUAL HOSTS")
		for _, rc := range SortedRoutes(s, f) {
			row(tw, rc.Name, strconv.Itoa(len(rc.VirtualHosts)))
		}
		return flush(tw)
	}
	row(tw, "NAME", "VHOST NAME", "DOMAINS", "MATCH", "VIRTUAL SERVICE")
	for _, rc := range SortedRoutes(s, f) {
		for i := range rc.VirtualHosts {
			vh := &rc.VirtualHosts[i]
			doms := describeDomains(vh.Domains)
			if len(vh.Routes) == 0 {
				row(tw, rc.Name, vh.Name, doms, "/*", "404")
				continue
			}
			for j := range vh.Routes {
				r := &vh.Routes[j]
				vs := ""
				if r.VirtualService != "" {
					vs = configName(r.VirtualService)
				}
				row(tw, rc.Name, vh.Name, doms, DescribeMatch(&r.Match), vs)
			}
		}
	}
	return flush(tw)
}

func flush(tw interface{ Flush() error }) error {
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("configview: %w", err)
	}
	return nil
}

// describeDomains shortens Istio's domain list (every name and name:port of a host) to
// its distinct host names without ports (a gateway's "host:*" counts as host): the first
// one, plus "+ N more..." when there are more (as istioctl does).
func describeDomains(domains []string) string {
	if len(domains) == 0 {
		return ""
	}
	var hosts []string
	for _, d := range domains {
		h := d
		if i := strings.LastIndexByte(d, ':'); i > 0 && !strings.Contains(d[i+1:], "]") {
			if _, err := strconv.Atoi(d[i+1:]); err == nil || d[i+1:] == "*" {
				h = d[:i]
			}
		}
		if !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	// Istio lists the FQDN first; the short name (its first label) reads best.
	first := hosts[0]
	for _, h := range hosts {
		if !strings.Contains(h, ".") && h != "*" {
			first = h
			break
		}
	}
	if len(hosts) == 1 {
		return first
	}
	return fmt.Sprintf("%s + %d more...", first, len(hosts)-1)
}
