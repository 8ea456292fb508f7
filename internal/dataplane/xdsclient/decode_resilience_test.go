package xdsclient

import (
	"testing"
	"time"

	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	typepb "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

func TestDecodeOutlierDetectionDefaults(t *testing.T) {
	c := fxClusterProto()
	c.OutlierDetection = &clusterpb.OutlierDetection{ConsecutiveGatewayFailure: wrapperspb.UInt32(2),
		EnforcingConsecutiveGatewayFailure: wrapperspb.UInt32(100), Interval: durationpb.New(2 * time.Second)}
	c.CircuitBreakers = &clusterpb.CircuitBreakers{Thresholds: []*clusterpb.CircuitBreakers_Thresholds{{
		RetryBudget: &clusterpb.CircuitBreakers_Thresholds_RetryBudget{BudgetPercent: &typepb.Percent{Value: 25}},
	}}}
	c.CommonLbConfig = &clusterpb.Cluster_CommonLbConfig{HealthyPanicThreshold: &typepb.Percent{Value: 0}}
	got, err := DecodeCluster(c)
	if err != nil {
		t.Fatal(err)
	}
	want := resource.OutlierDetection{Consecutive5xx: 5, EnforcingConsecutive5xx: 100, ConsecutiveGatewayFailure: 2,
		EnforcingConsecutiveGatewayFailure: 100, ConsecutiveLocalOriginFailure: 5, EnforcingConsecutiveLocalOriginFailure: 100,
		Interval: 2 * time.Second, BaseEjectionTime: 30 * time.Second, MaxEjectionTime: 300 * time.Second, MaxEjectionPercent: 10}
	if *got.OutlierDetection != want {
		t.Fatalf("outlier detection %+v", *got.OutlierDetection)
	}
	if *got.RetryBudget != (resource.RetryBudget{BudgetPercent: 25, MinRetryConcurrency: 3}) || got.HealthyPanicThreshold != 0 {
		t.Fatalf("retry budget %+v panic %v", *got.RetryBudget, got.HealthyPanicThreshold)
	}
	c.CommonLbConfig = nil
	if got, _ = DecodeCluster(c); got.HealthyPanicThreshold != -1 {
		t.Fatalf("unset panic threshold decoded as %v", got.HealthyPanicThreshold)
	}
}

func TestDecodeHashPolicyAndRetryOptions(t *testing.T) {
	a, err := decodeRouteAction(&routepb.RouteAction{
		ClusterSpecifier: &routepb.RouteAction_Cluster{Cluster: "c"},
		HashPolicy: []*routepb.RouteAction_HashPolicy{
			{PolicySpecifier: &routepb.RouteAction_HashPolicy_Header_{Header: &routepb.RouteAction_HashPolicy_Header{HeaderName: "X-User"}}},
			{PolicySpecifier: &routepb.RouteAction_HashPolicy_Cookie_{Cookie: &routepb.RouteAction_HashPolicy_Cookie{Name: "s", Ttl: durationpb.New(0)}}, Terminal: true},
		},
		RetryPolicy: &routepb.RetryPolicy{RetryOn: "retriable-headers",
			RetriableHeaders: []*routepb.HeaderMatcher{{Name: "x-retry", HeaderMatchSpecifier: &routepb.HeaderMatcher_PresentMatch{PresentMatch: true}}},
			RetryPriority:    &routepb.RetryPolicy_RetryPriority{Name: "envoy.retry_priorities.previous_priorities"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.HashPolicy) != 2 || a.HashPolicy[0].Header != "x-user" || a.HashPolicy[1].Cookie == nil ||
		!a.HashPolicy[1].Cookie.HasTTL || !a.HashPolicy[1].Terminal {
		t.Fatalf("hash policy %+v", a.HashPolicy)
	}
	if p := a.RetryPolicy; len(p.RetriableHeaders) != 1 || !p.RetriableHeaders[0].Present || !p.RemoteLocalities {
		t.Fatalf("retry policy %+v", p)
	}
}
