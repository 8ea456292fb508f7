package translate

import (
	"os"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

func baseObjects(t *testing.T, replace ...string) []byte {
	t.Helper()
	base, err := os.ReadFile("testdata/_base.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := string(base)
	for i := 0; i+1 < len(replace); i += 2 {
		if !strings.Contains(s, replace[i]) {
			t.Fatalf("_base.yaml has no %q", replace[i])
		}
		s = strings.ReplaceAll(s, replace[i], replace[i+1])
	}
	return []byte(s)
}

func buildMesh(t *testing.T, data []byte) *model.Mesh {
	t.Helper()
	m, _ := model.Build(loadObjects(t, "_base.yaml", data), nil)
	return m
}

func proxy(t *testing.T, id string) *model.Proxy {
	t.Helper()
	p, err := model.ParseNodeID(id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const productpage = "sidecar~127.0.10.1~productpage-v1.default~default.svc.cluster.local"

// An endpoint change (a workload's address moved) is an EDS-only change: the other
// proxies keep the very same listener, route and cluster Groups (nothing to marshal or
// send), their endpoint Group is new with only the touched host's assignments rebuilt,
// and the result equals a fresh Generate.
func TestEndpointChangeRebuildsOnlyEndpoints(t *testing.T) {
	var c Cache
	m1 := buildMesh(t, baseObjects(t))
	c.Update(m1, model.Diff(nil, m1))
	p := proxy(t, productpage)
	before := c.Parts(p)

	m2 := buildMesh(t, baseObjects(t, "address: 127.0.10.5", "address: 127.0.10.55"))
	ch := model.Diff(m1, m2)
	if ch.Config || !ch.EndpointHosts["ratings.default.svc.cluster.local"] || len(ch.EndpointHosts) != 1 || !ch.Workloads["default/ratings-v1"] {
		t.Fatalf("Diff = %+v, want an endpoint change of ratings by workload ratings-v1", ch)
	}
	c.Update(m2, ch)
	after := c.Parts(p)
	for _, sec := range []struct {
		name          string
		before, after []*Group
	}{{"listeners", before.Listeners, after.Listeners}, {"routes", before.Routes, after.Routes}, {"clusters", before.Clusters, after.Clusters}} {
		if len(sec.before) != len(sec.after) {
			t.Fatalf("%s: %d groups, then %d", sec.name, len(sec.before), len(sec.after))
		}
		for i := range sec.before {
			if sec.before[i] != sec.after[i] {
				t.Errorf("%s group %d rebuilt by an endpoint change", sec.name, i)
			}
		}
	}
	if before.Endpoints[0] == after.Endpoints[0] {
		t.Fatal("endpoint group not rebuilt")
	}
	for i, m := range after.Endpoints[0].msgs {
		name := resourceName(m)
		same := m == before.Endpoints[0].msgs[i]
		if strings.HasSuffix(name, "|ratings.default.svc.cluster.local") == same {
			t.Errorf("assignment %s: kept=%v, want only ratings' rebuilt", name, same)
		}
	}
	want := Generate(m2, proxy(t, productpage))
	got := after.Resources()
	for i := range want.Endpoints {
		if !proto.Equal(want.Endpoints[i], got.Endpoints[i]) {
			t.Errorf("assignment %s differs from Generate's", resourceName(want.Endpoints[i]))
		}
	}
	if !strings.Contains(protoText(got.Endpoints), "127.0.10.55") {
		t.Error("the moved endpoint's new address is not in the assignments")
	}
}

func protoText(ms []proto.Message) string {
	var b strings.Builder
	for _, m := range ms {
		b.WriteString(m.(interface{ String() string }).String())
	}
	return b.String()
}

// A configuration change (a new VirtualService) rebuilds every group.
func TestConfigChangeRebuilds(t *testing.T) {
	var c Cache
	m1 := buildMesh(t, baseObjects(t))
	c.Update(m1, model.Diff(nil, m1))
	p := proxy(t, productpage)
	before := c.Parts(p)
	vs := string(baseObjects(t)) + `
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews}}], timeout: 3s}]
`
	m2 := buildMesh(t, []byte(vs))
	ch := model.Diff(m1, m2)
	if !ch.Config {
		t.Fatalf("Diff = %+v after a new VirtualService, want a configuration change", ch)
	}
	c.Update(m2, ch)
	after := c.Parts(p)
	if before.Routes[0] == after.Routes[0] {
		t.Error("routes not rebuilt after a VirtualService change")
	}
	// The clusters and assignments the VirtualService does not touch are the same
	// messages (nothing to marshal or send again).
	reused := 0
	old := map[string]proto.Message{}
	for _, m := range before.Clusters[0].msgs {
		old[resourceName(m)] = m
	}
	for _, m := range after.Clusters[0].msgs {
		if name := resourceName(m); strings.HasPrefix(name, "outbound|") {
			if old[name] != m {
				t.Errorf("cluster %s rebuilt by a VirtualService change", name)
			}
			reused++
		}
	}
	if reused == 0 {
		t.Error("no outbound cluster to compare")
	}
}

// Two sidecars of one namespace share their class's groups; their own differ.
func TestProxiesOfAClassShareGroups(t *testing.T) {
	var c Cache
	m := buildMesh(t, baseObjects(t))
	c.Update(m, model.Diff(nil, m))
	a := c.Parts(proxy(t, productpage))
	b := c.Parts(proxy(t, "sidecar~127.0.10.5~ratings-v1.default~default.svc.cluster.local"))
	if a.Routes[0] != b.Routes[0] || a.Endpoints[0] != b.Endpoints[0] || a.Clusters[0] != b.Clusters[0] {
		t.Error("two sidecars of one class do not share their outbound groups")
	}
	if a.Listeners[1] == b.Listeners[1] {
		t.Error("two sidecars share their own listeners")
	}
}
