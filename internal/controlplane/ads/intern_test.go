package ads

import (
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// published returns the resource of typeURL named name in the snapshot the cache holds
// for node id.
func (s *testServer) published(t *testing.T, id, typeURL, name string) types.Resource {
	t.Helper()
	snap, err := s.cache.GetSnapshot(id)
	if err != nil {
		t.Fatalf("snapshot of %s: %v", id, err)
	}
	r := snap.GetResources(typeURL)[name]
	if r == nil {
		t.Fatalf("snapshot of %s has no %s %q", id, shortType(typeURL), name)
	}
	return r
}

func (s *testServer) sharedSize() int {
	s.genMu.Lock()
	defer s.genMu.Unlock()
	return s.shared.size()
}

// TestEqualResourcesStoredOnce: two proxies whose configurations are equal hold the same
// copy of every resource (the cache keeps one per distinct resource, not one per proxy);
// a resource that changes for one proxy only is its own, the other keeps its copy across
// the Push, and copies no snapshot uses any more are let go.
func TestEqualResourcesStoredOnce(t *testing.T) {
	s := startServer(t)
	a := dial(t, s.addr, "a", nil)
	b := dial(t, s.addr, "b", nil)
	handshake(t, a)
	handshake(t, b)

	kinds := []struct{ typeURL, name string }{
		{resourcev3.ClusterType, testCluster}, {resourcev3.EndpointType, testCluster},
		{resourcev3.ListenerType, testListener}, {resourcev3.RouteType, testRoute},
	}
	for _, k := range kinds {
		if s.published(t, "a", k.typeURL, k.name) != s.published(t, "b", k.typeURL, k.name) {
			t.Errorf("%s %s: proxies a and b hold separate copies of an equal resource", shortType(k.typeURL), k.name)
		}
	}
	if n := s.sharedSize(); n != 4 {
		t.Errorf("%d resources kept, want 4 (one per distinct resource)", n)
	}

	bEDS := s.published(t, "b", resourcev3.EndpointType, testCluster)
	s.gen.set(func(g *fakeGen) { g.port["a"] = 9999 })
	s.Push("v2")
	if p := endpointPort(t, a.next(resourcev3.EndpointType)); p != 9999 {
		t.Errorf("a was sent endpoint port %d, want 9999", p)
	}
	b.quiet("a change for a only")
	aEDS := s.published(t, "a", resourcev3.EndpointType, testCluster)
	if aEDS == bEDS {
		t.Fatal("a's changed endpoints are b's copy")
	}
	if s.published(t, "b", resourcev3.EndpointType, testCluster) != bEDS {
		t.Error("b's unchanged endpoints got a new copy in the Push")
	}
	if s.published(t, "a", resourcev3.ClusterType, testCluster) != s.published(t, "b", resourcev3.ClusterType, testCluster) {
		t.Error("the clusters, still equal, are no longer shared")
	}
	if n := s.sharedSize(); n != 5 {
		t.Errorf("%d resources kept, want 5 (a's endpoints differ now)", n)
	}

	// a is like b again: its copy of port 9999 is used by nobody and let go.
	s.gen.set(func(g *fakeGen) { delete(g.port, "a") })
	s.Push("v3")
	if s.published(t, "a", resourcev3.EndpointType, testCluster) != bEDS {
		t.Error("a's endpoints, equal to b's again, are not b's copy")
	}
	if n := s.sharedSize(); n != 4 {
		t.Errorf("%d resources kept after the Push, want 4", n)
	}
}
