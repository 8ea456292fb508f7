package ads

import (
	"crypto/sha256"
	"testing"

	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
)

// TestHashRemembersSharedPointers: within a Push, a cluster or endpoint assignment the
// Generator hands to several nodes (the same pointer) is marshalled once: the second
// node's hash comes from what the interner remembers, which the test proves by planting a
// different hash for the pointer. Listeners (built per node) are not remembered, and
// nothing remembered survives into the next Push's generation unless used in it.
func TestHashRemembersSharedPointers(t *testing.T) {
	var in interner
	in.begin()
	c := &clusterpb.Cluster{Name: "outbound|80||a"}
	l := &listenerpb.Listener{Name: "l"}

	h1, err := hashResources([]types.Resource{c}, in.share(resourcev3.ClusterType))
	if err != nil {
		t.Fatal(err)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := in.known(c); !ok || got != sha256.Sum256(b) {
		t.Fatalf("cluster's hash not remembered (ok=%v)", ok)
	}
	in.remember(c, [32]byte{1}) // planted: a remembered hash is used without marshalling
	h2, err := hashResources([]types.Resource{c}, in.share(resourcev3.ClusterType))
	if err != nil {
		t.Fatal(err)
	}
	if h1 == h2 {
		t.Error("the cluster was hashed again instead of reusing the remembered hash")
	}

	if _, err := hashResources([]types.Resource{l}, in.share(resourcev3.ListenerType)); err != nil {
		t.Fatal(err)
	}
	if _, ok := in.known(l); ok {
		t.Error("a listener's pointer was remembered; listeners are built per node")
	}

	in.end()
	in.begin()
	in.end()
	if _, ok := in.known(c); ok {
		t.Error("a pointer no Push used is still remembered")
	}
}
