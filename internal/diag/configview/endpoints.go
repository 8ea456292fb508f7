package configview

import (
	"cmp"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/lucid-mesh/lucid/internal/diag/inspect"
	"github.com/lucid-mesh/lucid/internal/diag/simulate"
)

// EndpointFilter selects endpoints as istioctl does: by address, port, cluster name and
// status (HEALTHY, UNHEALTHY, ...); each set field must be equal.
type EndpointFilter struct {
	Address string
	Port    int
	Cluster string
	Status  string
}

// EndpointRow is one row of `proxy-config endpoints`.
type EndpointRow struct {
	Endpoint string `json:"endpoint"`
	Status   string `json:"status"`
	Outlier  string `json:"outlier_check"`
	Cluster  string `json:"cluster"`
	addr     string
	port     int
}

// EmptyCluster is a cluster the load balancer can pick no host from, with the proxy's
// own explanation (the one its 503 UH carries).
type EmptyCluster struct {
	Cluster string `json:"cluster"`
	Reason  string `json:"reason"`
}

// EndpointRows filters and sorts the hosts of /clusters (by address, port, cluster).
func EndpointRows(cs []inspect.ClusterHealth, f EndpointFilter) []EndpointRow {
	out := []EndpointRow{}
	for _, c := range cs {
		if f.Cluster != "" && c.Name != f.Cluster {
			continue
		}
		for _, h := range c.Hosts {
			host, ps, _ := net.SplitHostPort(h.Address)
			port, _ := strconv.Atoi(ps)
			status := h.EDSHealth
			if status == "" {
				status = "UNKNOWN"
			}
			r := EndpointRow{Endpoint: h.Address, Status: status, Outlier: "OK", Cluster: c.Name, addr: host, port: port}
			if h.OutlierEjected {
				r.Outlier = "FAILED"
			}
			switch {
			case f.Address != "" && host != f.Address:
				continue
			case f.Port != 0 && port != f.Port:
				continue
			case f.Status != "" && !strings.EqualFold(status, f.Status):
				continue
			}
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b EndpointRow) int {
		return cmp.Or(strings.Compare(a.addr, b.addr), cmp.Compare(a.port, b.port), strings.Compare(a.Cluster, b.Cluster))
	})
	return out
}

// EmptyClusters lists the clusters (passing the cluster filter) that have no host to pick,
// with the reason, in name order. BlackHoleCluster is empty by design and left out.
func EmptyClusters(env *simulate.Env, f EndpointFilter) []EmptyCluster {
	if f.Address != "" || f.Port != 0 {
		return []EmptyCluster{}
	}
	names := make([]string, 0, len(env.Snap.Clusters))
	for n := range env.Snap.Clusters {
		if n != "BlackHoleCluster" && (f.Cluster == "" || n == f.Cluster) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	out := []EmptyCluster{}
	for _, n := range names {
		if reason, ok := env.NoHostReason(n); ok {
			out = append(out, EmptyCluster{Cluster: n, Reason: reason})
		}
	}
	return out
}

// Endpoints prints `proxy-config endpoints`:
//
//	ENDPOINT  STATUS  OUTLIER CHECK  CLUSTER
//
// followed by the clusters that have no endpoint to pick, each with the reason.
func Endpoints(w io.Writer, rows []EndpointRow, empty []EmptyCluster) error {
	tw := newTable(w, 5)
	row(tw, "ENDPOINT", "STATUS", "OUTLIER CHECK", "CLUSTER")
	for _, r := range rows {
		row(tw, r.Endpoint, r.Status, r.Outlier, r.Cluster)
	}
	if err := flush(tw); err != nil {
		return err
	}
	if len(empty) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("\nClusters with no endpoint to send to (requests get 503 UH no healthy upstream):\n")
	for _, e := range empty {
		fmt.Fprintf(&b, "  %s\n      %s\n", e.Cluster, e.Reason)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("configview: %w", err)
	}
	return nil
}
