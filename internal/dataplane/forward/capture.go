package forward

import (
	"net/http"

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

// explainBlockAll marks Istio's block_all route (REGISTRY_ONLY's catch-all virtual host:
// a 502 direct response) as a refusal with its reason. Envoy records it without a flag;
// Lucid gives it NR, as the explicit proxy's refused CONNECT, so that x-lucid-error and
// the access log say why.
func explainBlockAll(rp *Reply, rt *resource.Route, r *http.Request) {
	if rt.Name != "block_all" {
		return
	}
	rp.Flag = streaminfo.NoRouteFound
	rp.Explanation = "authority \"" + r.Host + "\" is not a service in the registry and the outbound traffic policy is REGISTRY_ONLY (route block_all)"
}
