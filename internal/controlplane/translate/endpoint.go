package translate

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointpb "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// loadAssignment is the ClusterLoadAssignment of an EDS cluster: the endpoints whose
// labels carry every selector label, grouped by locality (sorted), each HEALTHY with its
// weight (1 when unset) and Istio's workload metadata. Endpoints whose address is not an
// IP are left out (EDS needs addresses). meta gives each endpoint's metadata
// (endpointMetadata, or a cache's shared copy of it).
func loadAssignment(name string, eps []*model.Endpoint, selector map[string]string, meta func(*model.Endpoint) *corepb.Metadata) *endpointpb.ClusterLoadAssignment {
	byLocality := map[string]*endpointpb.LocalityLbEndpoints{}
	for _, e := range eps {
		if !hasLabels(selector, e.Labels) {
			continue
		}
		if _, err := netip.ParseAddr(e.Address); err != nil {
			continue
		}
		weight := e.Weight
		if weight == 0 {
			weight = 1
		}
		l := byLocality[e.Locality]
		if l == nil {
			l = &endpointpb.LocalityLbEndpoints{Locality: parseLocality(e.Locality)}
			byLocality[e.Locality] = l
		}
		l.LbEndpoints = append(l.LbEndpoints, &endpointpb.LbEndpoint{
			HostIdentifier:      &endpointpb.LbEndpoint_Endpoint{Endpoint: &endpointpb.Endpoint{Address: socketAddress(e.Address, e.Port)}},
			HealthStatus:        corepb.HealthStatus_HEALTHY,
			LoadBalancingWeight: wrapperspb.UInt32(weight),
			Metadata:            meta(e),
		})
		if l.LoadBalancingWeight == nil {
			l.LoadBalancingWeight = wrapperspb.UInt32(0)
		}
		l.LoadBalancingWeight.Value += weight
	}
	cla := &endpointpb.ClusterLoadAssignment{ClusterName: name}
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range byLocality {
			if !yield(k) {
				return
			}
		}
	}) {
		cla.Endpoints = append(cla.Endpoints, byLocality[k])
	}
	slices.SortStableFunc(cla.Endpoints, func(a, b *endpointpb.LocalityLbEndpoints) int {
		return cmp.Compare(localityString(a.GetLocality()), localityString(b.GetLocality()))
	})
	return cla
}

// endpointMetadata is Istio's workload metadata of e plus its labels (for lucid why).
func endpointMetadata(e *model.Endpoint) *corepb.Metadata {
	labels := make(map[string]any, len(e.Labels))
	for k, v := range e.Labels {
		labels[k] = v
	}
	return &corepb.Metadata{FilterMetadata: map[string]*structpb.Struct{
		"istio": mustStruct(map[string]any{"workload": e.WorkloadID()}),
		"lucid": mustStruct(map[string]any{"labels": labels}),
	}}
}

func hasLabels(selector, labels map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// parseLocality reads "region/zone/subzone". An unknown locality is an empty Locality,
// never a missing one: Istio sends it that way, and gRPC's xDS client rejects a
// LocalityLbEndpoints without one.
func parseLocality(s string) *corepb.Locality {
	if s == "" {
		return &corepb.Locality{}
	}
	parts := strings.SplitN(s, "/", 3)
	l := &corepb.Locality{Region: parts[0]}
	if len(parts) > 1 {
		l.Zone = parts[1]
	}
	if len(parts) > 2 {
		l.SubZone = parts[2]
	}
	return l
}

func localityString(l *corepb.Locality) string {
	if l == nil {
		return ""
	}
	return l.GetRegion() + "/" + l.GetZone() + "/" + l.GetSubZone()
}
