package translate

import (
	"testing"

	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// gRPC has no consecutive-error ejection: a gRPC client's cluster gets failure-percentage
// ejection at the smaller enforced count, the shared cluster untouched; a cluster without
// enforced consecutive errors is left as it is.
func TestGRPCOutlierDetection(t *testing.T) {
	shared := &clusterpb.Cluster{Name: "a", OutlierDetection: &clusterpb.OutlierDetection{
		Consecutive_5Xx: wrapperspb.UInt32(5), EnforcingConsecutive_5Xx: wrapperspb.UInt32(100),
		ConsecutiveGatewayFailure: wrapperspb.UInt32(3), EnforcingConsecutiveGatewayFailure: wrapperspb.UInt32(100),
	}}
	got := grpcOutlier(shared, shared)
	od := got.GetOutlierDetection()
	if got == shared || shared.GetOutlierDetection().GetEnforcingFailurePercentage() != nil {
		t.Fatal("the shared cluster was changed")
	}
	if od.GetEnforcingFailurePercentage().GetValue() != 100 || od.GetFailurePercentageRequestVolume().GetValue() != 3 ||
		od.GetFailurePercentageThreshold().GetValue() != grpcOutlierThreshold || od.GetFailurePercentageMinimumHosts().GetValue() != 1 {
		t.Errorf("gRPC's outlier detection: %v", od)
	}
	off := &clusterpb.Cluster{Name: "b", OutlierDetection: &clusterpb.OutlierDetection{Consecutive_5Xx: wrapperspb.UInt32(0), EnforcingConsecutive_5Xx: wrapperspb.UInt32(0)}}
	for _, c := range []*clusterpb.Cluster{off, {Name: "c"}} {
		if grpcOutlier(c, c) != c {
			t.Errorf("cluster %s without enforced consecutive errors was changed", c.GetName())
		}
	}
}
