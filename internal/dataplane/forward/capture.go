package forward

import (
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// blackHoled is the refusal of a connection whose tcp_proxy targets BlackHoleCluster: a
// captured connection to a destination with no listener under REGISTRY_ONLY (virtualOutbound's
// default chain), or one sent straight to the inbound capture port (Istio's
// virtualInbound-blackhole chain). Envoy closes it; the access log says why.
func blackHoled(tp *resource.TCPProxy, in Inbound) *Reply {
	if tp.Cluster != blackHole || len(tp.WeightedClusters) > 0 {
		return nil
	}
	why := "no listener for " + in.OriginalDst + " and the outbound traffic policy is REGISTRY_ONLY (BlackHoleCluster)"
	if in.Direction == "inbound" {
		why = "connection addressed to the inbound capture port itself (" + in.OriginalDst + "), not to a port of the workload (BlackHoleCluster)"
	}
	return &Reply{Flag: streaminfo.NoRouteFound, Details: "route_not_found", Explanation: why}
}
