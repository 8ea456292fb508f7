package cluster

import (
	"maps"
	"net"
	"strconv"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// Host is one upstream endpoint of a cluster. Its fields never change after it is built.
//
// Identity across updates: when an update keeps an address in the same cluster with the
// same endpoint, the *Host itself is kept; when the endpoint's attributes change (health,
// weight, labels, ...), a new *Host is built that shares Stats (so rq_active and the
// counters carry over). Compare hosts with Same, not ==.
type Host struct {
	Addr     string            // "ip:port", "[ipv6]:port" or "hostname:port"
	Endpoint resource.Endpoint // the endpoint as of the last update that changed it
	Stats    *HostStats        // shared by every incarnation of the host; never nil
	od       *hostOutlier      // outlier state, shared like Stats (outlier.go)
}

// Same says whether h and o are the same upstream host, possibly from different updates.
func (h *Host) Same(o *Host) bool {
	return h != nil && o != nil && h.Stats == o.Stats
}

// RequestStart counts one request to h: rq_total and rq_active (which LEAST_REQUEST
// balances on). Every RequestStart must be followed by one RequestEnd.
func (h *Host) RequestStart() {
	h.Stats.RqTotal.Add(1)
	h.Stats.RqActive.Add(1)
}

// RequestEnd ends a request counted by RequestStart.
func (h *Host) RequestEnd() {
	h.Stats.RqActive.Add(-1)
}

// endpointAddr is the dial address of an endpoint; "" when it has none.
func endpointAddr(ep *resource.Endpoint) string {
	if ep.Address.IsValid() {
		return ep.Address.String()
	}
	if ep.Hostname == "" {
		return ""
	}
	port := ep.Port
	if port == 0 {
		port = uint32(ep.Address.Port())
	}
	return net.JoinHostPort(ep.Hostname, strconv.FormatUint(uint64(port), 10))
}

func sameEndpoint(a, b *resource.Endpoint) bool {
	return a.Address == b.Address && a.Hostname == b.Hostname && a.Port == b.Port &&
		a.Health == b.Health && a.Weight == b.Weight && a.Locality == b.Locality &&
		a.Priority == b.Priority && a.Workload == b.Workload && maps.Equal(a.Labels, b.Labels)
}
