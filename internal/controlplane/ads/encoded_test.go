package ads

import (
	"fmt"
	"testing"
	"time"

	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/lucid-mesh/lucid/internal/testutil"
)

func testResources(t testing.TB, n int) []*resource {
	t.Helper()
	out := make([]*resource, n)
	for i := range out {
		a, err := anypb.New(wrapperspb.String(fmt.Sprintf("resource %d body", i)))
		if err != nil {
			t.Fatal(err)
		}
		out[i] = &resource{name: fmt.Sprintf("r%d", i), version: fmt.Sprintf("v%d", i), any: a}
	}
	return out
}

// What a stream sends (the cached body, then its nonce) decodes to exactly the response
// the protocol defines, for both protocols, removed names included.
func TestEncodedResponseIsTheResponse(t *testing.T) {
	res := testResources(t, 3)
	r := &response{typeURL: resourcev3.ClusterType, version: "v7", nonce: "42", resources: res, removed: []string{"gone"}}
	var c encodeCache

	body, err := c.encoded(true, r)
	if err != nil {
		t.Fatal(err)
	}
	var delta discoverygrpc.DeltaDiscoveryResponse
	if err := proto.Unmarshal((&encodedResponse{body: body, nonce: r.nonce}).bytes().Materialize(), &delta); err != nil {
		t.Fatal(err)
	}
	wantDelta := &discoverygrpc.DeltaDiscoveryResponse{TypeUrl: r.typeURL, SystemVersionInfo: "v7", Nonce: "42", RemovedResources: []string{"gone"}}
	for _, x := range res {
		wantDelta.Resources = append(wantDelta.Resources, &discoverygrpc.Resource{Name: x.name, Version: x.version, Resource: x.any})
	}
	if !proto.Equal(&delta, wantDelta) {
		t.Errorf("delta response decodes to\n%v\nwant\n%v", &delta, wantDelta)
	}

	body, err = c.encoded(false, r)
	if err != nil {
		t.Fatal(err)
	}
	var sotw discoverygrpc.DiscoveryResponse
	if err := proto.Unmarshal((&encodedResponse{body: body, nonce: "43"}).bytes().Materialize(), &sotw); err != nil {
		t.Fatal(err)
	}
	wantSotW := &discoverygrpc.DiscoveryResponse{TypeUrl: r.typeURL, VersionInfo: "v7", Nonce: "43"}
	for _, x := range res {
		wantSotW.Resources = append(wantSotW.Resources, x.any)
	}
	if !proto.Equal(&sotw, wantSotW) {
		t.Errorf("state-of-the-world response decodes to\n%v\nwant\n%v", &sotw, wantSotW)
	}
}

// The cache answers only an exact match: other resources (even with the same names), a
// different version, type, protocol or removed list is encoded anew.
func TestEncodeCacheExactMatch(t *testing.T) {
	res := testResources(t, 2)
	other := testResources(t, 2) // same names and versions, different resources
	base := response{typeURL: resourcev3.ClusterType, version: "1", resources: res}
	var c encodeCache
	first, _ := c.encoded(true, &base)
	for _, tc := range []struct {
		name  string
		delta bool
		r     response
		hit   bool
	}{
		{"the same content", true, base, true},
		{"the same content, another nonce", true, response{typeURL: base.typeURL, version: "1", nonce: "9", resources: res}, true},
		{"other resource objects", true, response{typeURL: base.typeURL, version: "1", resources: other}, false},
		{"another version", true, response{typeURL: base.typeURL, version: "2", resources: res}, false},
		{"another type", true, response{typeURL: resourcev3.EndpointType, version: "1", resources: res}, false},
		{"state of the world", false, base, false},
		{"a removed name", true, response{typeURL: base.typeURL, version: "1", resources: res, removed: []string{"x"}}, false},
		{"fewer resources", true, response{typeURL: base.typeURL, version: "1", resources: res[:1]}, false},
	} {
		hits := c.hits
		b, err := c.encoded(tc.delta, &tc.r)
		if err != nil {
			t.Fatal(err)
		}
		if hit := c.hits > hits; hit != tc.hit {
			t.Errorf("%s: cache hit %v, want %v", tc.name, hit, tc.hit)
		}
		if tc.hit && &b[0] != &first[0] {
			t.Errorf("%s: a hit returned other bytes", tc.name)
		}
	}
}

// A push to several proxies of one class encodes each response once.
func TestPushEncodesOncePerContent(t *testing.T) {
	const a = "outbound|80||a"
	g := &setGen{}
	g.set(resourcev3.ClusterType, edsCluster(a))
	g.set(resourcev3.EndpointType, cla(a, 8001))
	s, addr := startSetServer(t, g)
	const n = 4
	var cs []*deltaClient
	for i := range n {
		c := dialDelta(t, addr, fmt.Sprintf("sidecar~127.0.0.%d~a%d.default~default.svc.cluster.local", i+1, i))
		c.send(resourcev3.ClusterType, nil, nil, nil, "", "")
		c.ack(c.next(resourcev3.ClusterType))
		c.send(resourcev3.EndpointType, []string{a}, nil, nil, "", "")
		c.ack(c.next(resourcev3.EndpointType))
		cs = append(cs, c)
	}
	testutil.Eventually(t, 5*time.Second, "every proxy synced", func() bool { return len(s.SyncStatus()) == n })

	s.enc.mu.Lock()
	hits, misses := s.enc.hits, s.enc.misses
	s.enc.mu.Unlock()
	g.set(resourcev3.EndpointType, cla(a, 9001))
	s.Push(PushRequest{Version: "2"})
	for _, c := range cs {
		if got := endpointPort(t, &discoverygrpc.DiscoveryResponse{Resources: []*anypb.Any{c.next(resourcev3.EndpointType).GetResources()[0].GetResource()}}); got != 9001 {
			t.Errorf("a proxy got port %d, want the pushed 9001", got)
		}
	}
	s.enc.mu.Lock()
	defer s.enc.mu.Unlock()
	if m, h := s.enc.misses-misses, s.enc.hits-hits; m != 1 || h != n-1 {
		t.Errorf("the push encoded %d times and reused %d; want once, reused by the other %d", m, h, n-1)
	}
}

// BenchmarkSendToStreams is the marshalling a push to 1,000 streams costs for one
// 500 KB resource (a route configuration with 1,000 virtual hosts): encoded per stream
// (before) or once and shared (now).
func BenchmarkSendToStreams(b *testing.B) {
	big := make([]byte, 500<<10)
	a, err := anypb.New(wrapperspb.Bytes(big))
	if err != nil {
		b.Fatal(err)
	}
	r := &response{typeURL: resourcev3.RouteType, version: "1", resources: []*resource{{name: "8080", version: "1", any: a}}}
	const streams = 1000
	b.Run("per-stream", func(b *testing.B) {
		for b.Loop() {
			for i := range streams {
				r.nonce = fmt.Sprint(i)
				out := &discoverygrpc.DeltaDiscoveryResponse{TypeUrl: r.typeURL, SystemVersionInfo: r.version, Nonce: r.nonce,
					Resources: []*discoverygrpc.Resource{{Name: "8080", Version: "1", Resource: a}}}
				if _, err := proto.Marshal(out); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("shared", func(b *testing.B) {
		var c encodeCache
		for b.Loop() {
			c = encodeCache{} // every push starts cold
			for i := range streams {
				r.nonce = fmt.Sprint(i)
				body, err := c.encoded(true, r)
				if err != nil {
					b.Fatal(err)
				}
				_ = (&encodedResponse{body: body, nonce: r.nonce}).bytes()
			}
		}
	})
}
