package translate

import (
	"testing"
	"time"

	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
)

func TestApplyTCPKeepaliveMeshThenDR(t *testing.T) {
	type ka = networkingv1alpha3.ConnectionPoolSettings_TCPSettings_TcpKeepalive
	tests := []struct {
		name                   string
		mesh, dr               *ka
		wantSet                bool
		probes, time, interval uint32
	}{
		{"neither: unset", nil, nil, false, 0, 0, 0},
		{"mesh only", &ka{Probes: 3, Time: durationpb.New(10 * time.Second)}, nil, true, 3, 10, 0},
		{"DR overrides per field", &ka{Probes: 3, Time: durationpb.New(10 * time.Second), Interval: durationpb.New(5 * time.Second)}, &ka{Time: durationpb.New(60 * time.Second)}, true, 3, 60, 5},
		{"empty DR message still sets keepalive", nil, &ka{}, true, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &clusterpb.Cluster{}
			applyTCPKeepalive(c, tt.mesh, tt.dr)
			k := c.GetUpstreamConnectionOptions().GetTcpKeepalive()
			if (k != nil) != tt.wantSet {
				t.Fatalf("set = %v, want %v", k != nil, tt.wantSet)
			}
			if k.GetKeepaliveProbes().GetValue() != tt.probes || k.GetKeepaliveTime().GetValue() != tt.time || k.GetKeepaliveInterval().GetValue() != tt.interval {
				t.Fatalf("got %v", k)
			}
		})
	}
}
