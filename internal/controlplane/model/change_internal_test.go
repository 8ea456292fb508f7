package model

import (
	"testing"

	"google.golang.org/protobuf/proto"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
)

// The fingerprint hashes a Service without its endpoints: every other field counts.
func TestWithoutEndpointsKeepsEveryOtherField(t *testing.T) {
	se := &networkingv1alpha3.ServiceEntry{
		Hosts: []string{"reviews.default.svc.cluster.local"}, Addresses: []string{"10.96.0.20"},
		Ports:            []*networkingv1alpha3.ServicePort{{Number: 9080, Name: "http", Protocol: "HTTP"}},
		Location:         networkingv1alpha3.ServiceEntry_MESH_INTERNAL,
		Resolution:       networkingv1alpha3.ServiceEntry_STATIC,
		WorkloadSelector: &networkingv1alpha3.WorkloadSelector{Labels: map[string]string{"app": "reviews"}},
		ExportTo:         []string{"."}, SubjectAltNames: []string{"spiffe://cluster.local/ns/default/sa/reviews"},
		Endpoints: []*networkingv1alpha3.WorkloadEntry{{Address: "10.0.0.1"}},
	}
	want := proto.Clone(se).(*networkingv1alpha3.ServiceEntry)
	want.Endpoints = nil
	got := withoutEndpoints(se)
	if !proto.Equal(got, want) {
		t.Fatalf("without endpoints:\n got %v\nwant %v", got, want)
	}
	if len(se.GetEndpoints()) != 1 {
		t.Fatal("the original lost its endpoints")
	}
}
