package translate

import (
	"slices"
	"strings"
	"testing"

	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// A proxyless gRPC client (GENERATOR grpc) of the default namespace gets, per service
// port, listeners named by every target it may dial, each an api_listener taking the
// service's own route configuration "outbound|<port>||<host>" (one virtual host, no
// catch-all); the clusters and endpoints of a sidecar in its place; no inbound listeners.
func TestProxylessGRPCResources(t *testing.T) {
	var c Cache
	m := buildMesh(t, baseObjects(t))
	c.Update(m, model.Full)
	p := proxy(t, "sidecar~127.0.10.40~grpc-client.default~default.svc.cluster.local")
	p.GRPC = true
	got := c.Parts(p).Resources()
	side := c.Parts(proxy(t, "sidecar~127.0.10.40~grpc-client.default~default.svc.cluster.local")).Resources()

	var names []string
	for _, l := range got.Listeners {
		ln := l.(*listenerpb.Listener)
		names = append(names, ln.GetName())
		var hcm hcmpb.HttpConnectionManager
		if err := ln.GetApiListener().GetApiListener().UnmarshalTo(&hcm); err != nil || len(ln.GetFilterChains()) != 0 {
			t.Fatalf("listener %s is not an api_listener: %v", ln.GetName(), err)
		}
		if ln.GetName() == "reviews:9080" && hcm.GetRds().GetRouteConfigName() != "outbound|9080||reviews.default.svc.cluster.local" {
			t.Errorf("reviews:9080 takes routes %q", hcm.GetRds().GetRouteConfigName())
		}
		if fs := hcm.GetHttpFilters(); fs[len(fs)-1].GetName() != RouterFilter {
			t.Errorf("listener %s: the router is not the last filter", ln.GetName())
		}
	}
	for _, want := range []string{"reviews.default.svc.cluster.local:9080", "reviews:9080", "reviews.default:9080", "reviews.default.svc:9080"} {
		if !slices.Contains(names, want) {
			t.Errorf("no listener %s among %v", want, names)
		}
	}
	var rcs []string
	for _, r := range got.Routes {
		rc := r.(*routepb.RouteConfiguration)
		rcs = append(rcs, rc.GetName())
		if len(rc.GetVirtualHosts()) != 1 || rc.GetVirtualHosts()[0].GetName() == "allow_any" {
			t.Errorf("route configuration %s: virtual hosts %v, want the service's only", rc.GetName(), rc.GetVirtualHosts())
		}
	}
	if !slices.Contains(rcs, "outbound|9080||reviews.default.svc.cluster.local") {
		t.Errorf("route configurations %v", rcs)
	}
	if len(got.Clusters) != len(side.Clusters)-countInbound(side.Clusters) || len(got.Endpoints) != len(side.Endpoints) {
		t.Errorf("clusters %d, endpoints %d; a sidecar has %d (%d inbound) and %d", len(got.Clusters), len(got.Endpoints),
			len(side.Clusters), countInbound(side.Clusters), len(side.Endpoints))
	}
}

func countInbound(cs []proto.Message) int {
	n := 0
	for _, c := range cs {
		if strings.HasPrefix(c.(*clusterpb.Cluster).GetName(), "inbound|") {
			n++
		}
	}
	return n
}

// gRPC refuses clusters with transport_socket_matches: a gRPC client gets them without
// transport sockets, the shared Group left untouched.
func TestGRPCClustersWithoutTransportSockets(t *testing.T) {
	plain := &clusterpb.Cluster{Name: "a"}
	tls := &clusterpb.Cluster{Name: "b", TransportSocketMatches: []*clusterpb.Cluster_TransportSocketMatch{{Name: "tlsMode-istio"}}}
	g := newGroup([]proto.Message{plain, tls})
	if same := newGroup([]proto.Message{plain}); grpcClusters(same, newGroup(nil)) != same {
		t.Errorf("a group without transport sockets is copied")
	}
	got := grpcClusters(g, newGroup(nil)).Messages()
	if len(got) != 2 || got[0] != plain || got[1].(*clusterpb.Cluster).GetName() != "b" || len(got[1].(*clusterpb.Cluster).GetTransportSocketMatches()) != 0 {
		t.Errorf("clusters for gRPC: %v", got)
	}
	if len(tls.GetTransportSocketMatches()) != 1 {
		t.Errorf("the shared cluster was changed")
	}
}

// gRPC clients of one class share their Groups, as sidecars do; a configuration change
// builds them again.
func TestProxylessGRPCClientsShareGroups(t *testing.T) {
	var c Cache
	m := buildMesh(t, baseObjects(t))
	c.Update(m, model.Full)
	grpcProxy := func(id string) *model.Proxy {
		p := proxy(t, id)
		p.GRPC = true
		return p
	}
	a := c.Parts(grpcProxy("sidecar~127.0.10.40~grpc-a.default~default.svc.cluster.local"))
	b := c.Parts(grpcProxy("sidecar~127.0.10.41~grpc-b.default~default.svc.cluster.local"))
	if a.Listeners[0] != b.Listeners[0] || a.Routes[0] != b.Routes[0] || a.Clusters[0] != b.Clusters[0] {
		t.Errorf("two gRPC clients of one class got different Groups")
	}
	c.Update(buildMesh(t, baseObjects(t)), model.Full)
	if again := c.Parts(grpcProxy("sidecar~127.0.10.40~grpc-a.default~default.svc.cluster.local")); again.Listeners[0] == a.Listeners[0] {
		t.Errorf("a configuration change kept the gRPC listeners of the mesh before")
	}
}
