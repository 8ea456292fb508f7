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

// ClusterFilter selects clusters as istioctl does: each set field must appear in the
// cluster's name (port as "|<port>|").
type ClusterFilter struct {
	FQDN      string
	Port      int
	Subset    string
	Direction string // "inbound" | "outbound"
}

// Match reports whether a cluster name passes the filter.
func (f ClusterFilter) Match(name string) bool {
	switch {
	case f.FQDN != "" && !strings.Contains(name, f.FQDN):
		return false
	case f.Direction != "" && !strings.Contains(name, f.Direction):
		return false
	case f.Subset != "" && !strings.Contains(name, f.Subset):
		return false
	case f.Port != 0 && !strings.Contains(name, "|"+strconv.Itoa(f.Port)+"|"):
		return false
	}
	return true
}

// SortedClusters returns the snapshot's clusters that pass f, in istioctl's order: by host,
// subset, port, direction.
func SortedClusters(s *resource.Snapshot, f ClusterFilter) []*resource.Cluster {
	var out []*resource.Cluster
	for _, c := range s.Clusters {
		if f.Match(c.Name) {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b *resource.Cluster) int {
		pa, pb := ParseClusterName(a.Name), ParseClusterName(b.Name)
		return cmp.Or(strings.Compare(pa.Host, pb.Host), strings.Compare(pa.Subset, pb.Subset),
			cmp.Compare(pa.Port, pb.Port), strings.Compare(pa.Direction, pb.Direction))
	})
	return out
}

// TypeName is the cluster discovery type as Envoy names it.
func TypeName(t resource.DiscoveryType) string {
	switch t {
	case resource.EDS:
		return "EDS"
	case resource.Static:
		return "STATIC"
	case resource.OriginalDst:
		return "ORIGINAL_DST"
	case resource.StrictDNS:
		return "STRICT_DNS"
	case resource.LogicalDNS:
		return "LOGICAL_DNS"
	}
	return "UNKNOWN"
}

// Clusters prints `proxy-config clusters`:
//
//	SERVICE FQDN  PORT  SUBSET  DIRECTION  TYPE  DESTINATION RULE
func Clusters(w io.Writer, s *resource.Snapshot, f ClusterFilter) error {
	tw := newTable(w, 5)
	row(tw, "SERVICE FQDN", "PORT", "SUBSET", "DIRECTION", "TYPE", "DESTINATION RULE")
	for _, c := range SortedClusters(s, f) {
		p := ParseClusterName(c.Name)
		dr := ""
		if c.Info.DestinationRule != "" {
			dr = configName(c.Info.DestinationRule)
		}
		if p.Istio {
			row(tw, p.Host, strconv.Itoa(p.Port), dash(p.Subset), p.Direction, TypeName(c.Type), dr)
		} else {
			row(tw, c.Name, "-", "-", "-", TypeName(c.Type), dr)
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("configview: %w", err)
	}
	return nil
}

// ClusterNames prints one cluster name per line (-o short).
func ClusterNames(w io.Writer, s *resource.Snapshot, f ClusterFilter) error {
	for _, c := range SortedClusters(s, f) {
		if _, err := fmt.Fprintln(w, c.Name); err != nil {
			return fmt.Errorf("configview: %w", err)
		}
	}
	return nil
}
