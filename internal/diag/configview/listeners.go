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

// ListenerFilter selects listeners by address, port and type (HTTP, TCP, HTTP+TCP).
type ListenerFilter struct {
	Address string
	Port    uint32
	Type    string
}

// Match reports whether a listener passes the filter.
func (f ListenerFilter) Match(l *resource.Listener) bool {
	switch {
	case f.Address != "" && !strings.EqualFold(l.Address.Addr().String(), f.Address):
		return false
	case f.Port != 0 && uint32(l.Address.Port()) != f.Port:
		return false
	case f.Type != "" && !strings.EqualFold(ListenerType(l), f.Type):
		return false
	}
	return true
}

func chains(l *resource.Listener) []*resource.FilterChain {
	out := make([]*resource.FilterChain, 0, len(l.FilterChains)+1)
	for i := range l.FilterChains {
		out = append(out, &l.FilterChains[i])
	}
	if l.DefaultChain != nil {
		out = append(out, l.DefaultChain)
	}
	return out
}

// ListenerType classifies a listener as istioctl does: HTTP, TCP, HTTP+TCP or UNKNOWN
// (tcp_proxy chains to BlackHoleCluster do not count).
func ListenerType(l *resource.Listener) string {
	var nHTTP, nTCP int
	for _, fc := range chains(l) {
		switch {
		case fc.HTTP != nil:
			nHTTP++
		case fc.TCP != nil && fc.TCP.Cluster != "BlackHoleCluster":
			nTCP++
		}
	}
	switch {
	case nHTTP > 0 && nTCP > 0:
		return "HTTP+TCP"
	case nHTTP > 0:
		return "HTTP"
	case nTCP > 0:
		return "TCP"
	}
	return "UNKNOWN"
}

// SortedListeners returns the listeners that pass f, by port, address, then type.
func SortedListeners(s *resource.Snapshot, f ListenerFilter) []*resource.Listener {
	var out []*resource.Listener
	for _, l := range s.Listeners {
		if f.Match(l) {
			out = append(out, l)
		}
	}
	slices.SortFunc(out, func(a, b *resource.Listener) int {
		return cmp.Or(cmp.Compare(a.Address.Port(), b.Address.Port()),
			strings.Compare(a.Address.Addr().String(), b.Address.Addr().String()),
			strings.Compare(ListenerType(a), ListenerType(b)), strings.Compare(a.Name, b.Name))
	})
	return out
}

// Listeners prints `proxy-config listeners`: one row per filter chain,
//
//	ADDRESSES  PORT  MATCH  DESTINATION
//
// or, short, one row per listener: ADDRESSES PORT TYPE.
func Listeners(w io.Writer, s *resource.Snapshot, f ListenerFilter, short bool) error {
	tw := newTable(w, 1)
	if short {
		row(tw, "ADDRESSES", "PORT", "TYPE")
	} else {
		row(tw, "ADDRESSES", "PORT", "MATCH", "DESTINATION")
	}
	for _, l := range SortedListeners(s, f) {
		addr, port := l.Address.Addr().String(), strconv.Itoa(int(l.Address.Port()))
		if short {
			row(tw, addr, port, ListenerType(l))
			continue
		}
		type m struct{ match, dest string }
		var ms []m
		for _, fc := range chains(l) {
			ms = append(ms, m{describeChainMatch(fc.Match), describeDestination(fc)})
		}
		slices.SortStableFunc(ms, func(a, b m) int { return strings.Compare(b.dest, a.dest) })
		for _, x := range ms {
			row(tw, addr, port, x.match, x.dest)
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("configview: %w", err)
	}
	return nil
}

// Application protocol sets istioctl names.
var alpnNames = []struct {
	name  string
	alpns []string
}{
	{"App: HTTP TLS", []string{"http/1.0", "http/1.1", "h2c", "istio-http/1.0", "istio-http/1.1", "istio-h2"}},
	{"App: Istio HTTP Plain", []string{"istio", "istio-http/1.0", "istio-http/1.1", "istio-h2"}},
	{"App: TCP TLS", []string{"istio-peer-exchange", "istio"}},
	{"App: HTTP", []string{"http/1.0", "http/1.1", "h2c"}},
}

func describeChainMatch(m resource.FilterChainMatch) string {
	var parts []string
	if len(m.ServerNames) > 0 {
		parts = append(parts, "SNI: "+strings.Join(m.ServerNames, ","))
	}
	if m.TransportProtocol != "" {
		parts = append(parts, "Trans: "+m.TransportProtocol)
	}
	if len(m.ApplicationProtocols) > 0 {
		name := "App: " + strings.Join(m.ApplicationProtocols, ",")
		for _, a := range alpnNames {
			if slices.Equal(a.alpns, m.ApplicationProtocols) {
				name = a.name
				break
			}
		}
		parts = append(parts, name)
	}
	if m.DestinationPort != 0 {
		parts = append(parts, "Addr: *:"+strconv.Itoa(int(m.DestinationPort)))
	}
	if len(parts) == 0 {
		return "ALL"
	}
	return strings.Join(parts, "; ")
}

func describeDestination(fc *resource.FilterChain) string {
	switch {
	case fc.HTTP != nil && fc.HTTP.Routes != nil:
		return describeInlineRoutes(fc.HTTP.Routes)
	case fc.HTTP != nil && fc.HTTP.RDSName != "":
		return "Route: " + fc.HTTP.RDSName
	case fc.HTTP != nil:
		return "HTTP"
	case fc.TCP != nil && len(fc.TCP.WeightedClusters) > 0:
		var ns []string
		for _, wc := range fc.TCP.WeightedClusters {
			ns = append(ns, fmt.Sprintf("%s (%d)", wc.Name, wc.Weight))
		}
		return "Clusters: " + strings.Join(ns, ", ")
	case fc.TCP != nil:
		return clusterLabel(fc.TCP.Cluster)
	}
	return "Non-HTTP/Non-TCP"
}

// clusterLabel prints well-known clusters (…Cluster) by name, others as "Cluster: name".
func clusterLabel(name string) string {
	if strings.Contains(name, "Cluster") {
		return name
	}
	return "Cluster: " + name
}

func describeInlineRoutes(rc *resource.RouteConfig) string {
	if len(rc.VirtualHosts) == 1 {
		vh := &rc.VirtualHosts[0]
		if slices.Equal(vh.Domains, []string{"*"}) && len(vh.Routes) == 1 {
			r := &vh.Routes[0]
			if r.Match.PathKind == resource.PathPrefix && r.Match.Path == "/" && r.Action != nil && r.Action.Cluster != "" {
				return clusterLabel(r.Action.Cluster)
			}
		}
	}
	var vhs []string
	for i := range rc.VirtualHosts {
		vh := &rc.VirtualHosts[i]
		var ms []string
		for j := range vh.Routes {
			ms = append(ms, DescribeMatch(&vh.Routes[j].Match))
		}
		d := ""
		if !slices.Equal(vh.Domains, []string{"*"}) {
			d = strings.Join(vh.Domains, "/") + " "
		}
		vhs = append(vhs, d+strings.Join(ms, ", "))
	}
	return "Inline Route: " + strings.Join(vhs, "; ")
}

// DescribeMatch renders a route's path match as istioctl does: "/prefix*", "/exact",
// "regex <re>"; header matches are not shown.
func DescribeMatch(m *resource.RouteMatch) string {
	switch m.PathKind {
	case resource.PathPrefix:
		return m.Path + "*"
	case resource.PathExact:
		return m.Path
	case resource.PathRegex:
		if m.Regex != nil {
			return "regex " + m.Regex.String()
		}
		return "regex"
	case resource.PathSeparated:
		return m.Path + "/*"
	}
	return ""
}
