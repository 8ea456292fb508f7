package translate

import (
	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	typepb "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
)

// applyOutlierDetection maps a DestinationRule's outlierDetection as Istio does:
// consecutive error counts enforced at 100% when positive (0 disables), success-rate
// ejection off, and minHealthPercent as the panic threshold (0: panic mode off).
func applyOutlierDetection(c *clusterpb.Cluster, od *networkingv1alpha3.OutlierDetection) {
	if od == nil {
		return
	}
	out := &clusterpb.OutlierDetection{EnforcingSuccessRate: wrapperspb.UInt32(0)}
	enforce := func(v uint32) *wrapperspb.UInt32Value {
		if v > 0 {
			return wrapperspb.UInt32(100)
		}
		return wrapperspb.UInt32(0)
	}
	if v := od.GetConsecutive_5XxErrors(); v != nil {
		out.Consecutive_5Xx = wrapperspb.UInt32(v.GetValue())
		out.EnforcingConsecutive_5Xx = enforce(v.GetValue())
	} else if n := od.GetConsecutiveErrors(); n > 0 { //nolint:staticcheck // the deprecated field still applies
		out.Consecutive_5Xx = wrapperspb.UInt32(uint32(n))
		out.EnforcingConsecutive_5Xx = enforce(uint32(n))
	}
	if v := od.GetConsecutiveGatewayErrors(); v != nil {
		out.ConsecutiveGatewayFailure = wrapperspb.UInt32(v.GetValue())
		out.EnforcingConsecutiveGatewayFailure = enforce(v.GetValue())
	}
	if d := od.GetInterval(); d != nil {
		out.Interval = durationpb.New(d.AsDuration())
	}
	if d := od.GetBaseEjectionTime(); d != nil {
		out.BaseEjectionTime = durationpb.New(d.AsDuration())
	}
	if n := od.GetMaxEjectionPercent(); n > 0 {
		out.MaxEjectionPercent = wrapperspb.UInt32(uint32(n))
	}
	if od.GetSplitExternalLocalOriginErrors() {
		out.SplitExternalLocalOriginErrors = true
		out.EnforcingLocalOriginSuccessRate = wrapperspb.UInt32(0)
		if v := od.GetConsecutiveLocalOriginFailures(); v != nil {
			out.ConsecutiveLocalOriginFailure = wrapperspb.UInt32(v.GetValue())
			out.EnforcingConsecutiveLocalOriginFailure = enforce(v.GetValue())
		}
	}
	c.OutlierDetection = out
	if n := od.GetMinHealthPercent(); n >= 0 {
		c.CommonLbConfig = &clusterpb.Cluster_CommonLbConfig{HealthyPanicThreshold: &typepb.Percent{Value: float64(n)}}
	}
}
