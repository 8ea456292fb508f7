package configview

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// RouteFilter selects route configurations by name.
type RouteFilter struct{ Name string }

// SortedRoutes returns the route configurations that pass f in istioctl's order: by name
// (the config dump's order), then sorted with istioctl's comparison (numeric names, the
// outbound ports, in numeric order; a name that is not a number compares equal to any
// other, so those keep the places Go's sort leaves them in), then filtered.
func SortedRoutes(s *resource.Snapshot, f RouteFilter) []*resource.RouteConfig {
	all := make([]*resource.RouteConfig, 0, len(s.Routes))
	for _, rc := range s.Routes {
		all = append(all, rc)
	}
	slices.SortFunc(all, func(a, b *resource.RouteConfig) int { return strings.Compare(a.Name, b.Name) })
	sort.Slice(all, func(i, j int) bool {
		a, errA := strconv.Atoi(all[i].Name)
		b, errB := strconv.Atoi(all[j].Name)
		return errA == nil && errB == nil && a < b
	})
	var out []*resource.RouteConfig
	for _, rc := range all {
		if f.Name == "" || rc.Name == f.Name {
			out = append(out, rc)
		}
	}
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
				if r.Action != nil && r.Action.Cluster == passthroughCluster {
					continue // istioctl leaves out the routes to PassthroughCluster (allow_any)
				}
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

// passthroughCluster is Istio's cluster for traffic to unknown destinations.
const passthroughCluster = "PassthroughCluster"

// describeDomains shortens a virtual host's domains as istioctl does: one domain is shown
// as it is; of several, the ones without a port (an IPv6 literal alone counts as one), less
// each "<x>.svc.cluster.local" and "<x>.svc" whose shorter form is also listed, the first
// two joined by ", " and "+ N more..." for the rest.
func describeDomains(domains []string) string {
	switch len(domains) {
	case 0:
		return ""
	case 1:
		return domains[0]
	}
	var hosts []string
	for _, d := range domains {
		colons := strings.Count(d, ":")
		if colons == 0 || colons > 2 && strings.HasSuffix(d, "]") {
			hosts = append(hosts, d)
		}
	}
	listed := map[string]bool{}
	for _, h := range hosts {
		listed[h] = true
	}
	shortened := func(h string) bool {
		for _, suffix := range []string{".svc.cluster.local", ".svc"} {
			if short := strings.TrimSuffix(h, suffix); short != h && listed[short] {
				return true
			}
		}
		return false
	}
	shown := make([]string, 0, len(hosts))
	for _, h := range hosts {
		if !shortened(h) {
			shown = append(shown, h)
		}
	}
	const most = 2
	if len(shown) > most {
		return fmt.Sprintf("%s + %d more...", strings.Join(shown[:most], ", "), len(shown)-most)
	}
	return strings.Join(shown, ", ")
}
