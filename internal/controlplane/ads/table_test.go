package ads

import (
	"testing"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

// generated returns the resource of typeURL named name that the server holds for node id.
func (s *testServer) generated(t *testing.T, id, typeURL, name string) *resource {
	t.Helper()
	var r *resource
	testutil.Eventually(t, 5*time.Second, "generated "+name, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		if n := s.nodes[id]; n != nil {
			r = n.cur[typeURL].get(name)
		}
		return r != nil
	})
	return r
}

// TestEqualResourcesStoredOnce: two proxies whose configurations are equal hold the same
// copy of every resource (one per distinct resource, not one per proxy), even when the
// generator builds them separately; a resource that changes for one proxy only is its own,
// the other keeps its copy across the push, and copies no proxy uses any more are let go.
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
		if s.generated(t, "a", k.typeURL, k.name) != s.generated(t, "b", k.typeURL, k.name) {
			t.Errorf("%s %s: proxies a and b hold separate copies of an equal resource", shortType(k.typeURL), k.name)
		}
	}
	if n := s.table.size(); n != 4 {
		t.Errorf("%d resources kept, want 4 (one per distinct resource)", n)
	}

	bEDS := s.generated(t, "b", resourcev3.EndpointType, testCluster)
	s.gen.set(func(g *fakeGen) { g.port["a"] = 9999 })
	s.Push(PushRequest{Version: "v2"})
	eds := a.next(resourcev3.EndpointType)
	if p := endpointPort(t, eds); p != 9999 {
		t.Errorf("a was sent endpoint port %d, want 9999", p)
	}
	a.ack(eds, []string{testCluster})
	b.quiet("a change for a only")
	if s.generated(t, "a", resourcev3.EndpointType, testCluster) == bEDS {
		t.Fatal("a's changed endpoints are b's copy")
	}
	if s.generated(t, "b", resourcev3.EndpointType, testCluster) != bEDS {
		t.Error("b's unchanged endpoints got a new copy in the push")
	}
	if s.generated(t, "a", resourcev3.ClusterType, testCluster) != s.generated(t, "b", resourcev3.ClusterType, testCluster) {
		t.Error("the clusters, still equal, are no longer shared")
	}
	if n := s.table.size(); n != 5 {
		t.Errorf("%d resources kept, want 5 (a's endpoints differ now)", n)
	}

	// a is like b again: its copy of port 9999 is used by nobody and let go within two
	// pushes.
	s.gen.set(func(g *fakeGen) { delete(g.port, "a") })
	s.Push(PushRequest{Version: "v3"})
	a.ack(a.next(resourcev3.EndpointType), []string{testCluster})
	testutil.Eventually(t, 5*time.Second, "a back on b's endpoints", func() bool {
		return s.generated(t, "a", resourcev3.EndpointType, testCluster) == bEDS
	})
	for _, v := range []string{"v4", "v5"} {
		s.Push(PushRequest{Version: v})
		a.quiet("no change")
	}
	if n := s.table.size(); n != 4 {
		t.Errorf("%d resources kept two pushes later, want 4", n)
	}
}
