package translate

import (
	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Outlier detection for proxyless gRPC. A DestinationRule's consecutive5xxErrors and
// consecutiveGatewayErrors become Envoy's consecutive_5xx and consecutive_gateway_failure,
// which gRPC does not implement (its outlier detection has the success-rate and
// failure-percentage algorithms only, and Istio turns success rate off): sent as they
// are, they eject nothing in a gRPC client. So a gRPC client's cluster gets, beside them,
// failure-percentage ejection at the same count: an endpoint that received at least N
// calls in one interval and failed nearly all of them (more than 99 %) is ejected, with
// no minimum number of endpoints (consecutive errors have none). gRPC counts any status
// other than OK as a failure.

// grpcOutlierThreshold is the failure percentage above which an endpoint is ejected.
const grpcOutlierThreshold = 99

// grpcOutlier is c with failure-percentage ejection for its consecutive-error settings
// (c itself when it has none). c is a clone of orig when it differs from it; orig is
// shared and never modified.
func grpcOutlier(c, orig *clusterpb.Cluster) *clusterpb.Cluster {
	od := c.GetOutlierDetection()
	n := uint32(0)
	if od.GetEnforcingConsecutive_5Xx().GetValue() > 0 && od.GetConsecutive_5Xx() != nil {
		n = od.GetConsecutive_5Xx().GetValue()
	}
	if g := od.GetConsecutiveGatewayFailure(); od.GetEnforcingConsecutiveGatewayFailure().GetValue() > 0 && g != nil && (n == 0 || g.GetValue() < n) {
		n = g.GetValue()
	}
	if n == 0 || od.GetEnforcingFailurePercentage() != nil {
		return c
	}
	if c == orig {
		c = proto.Clone(c).(*clusterpb.Cluster)
	}
	od = c.GetOutlierDetection()
	od.EnforcingFailurePercentage = wrapperspb.UInt32(100)
	od.FailurePercentageThreshold = wrapperspb.UInt32(grpcOutlierThreshold)
	od.FailurePercentageRequestVolume = wrapperspb.UInt32(n)
	od.FailurePercentageMinimumHosts = wrapperspb.UInt32(1)
	return c
}
