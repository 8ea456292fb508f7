package translate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/proto"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// cacheProxies are the proxies TestCacheMatchesGenerate generates for in every case: the
// golden cases' proxies (three namespaces' workloads and a gateway) plus workloads of
// another namespace, so DestinationRules with workload selectors and exportTo differ.
var cacheProxies = []string{
	"sidecar~127.0.10.1~productpage-v1.default~default.svc.cluster.local",
	"sidecar~127.0.10.3~reviews-v2.default~default.svc.cluster.local",
	"sidecar~127.0.10.5~ratings-v1.default~default.svc.cluster.local",
	"sidecar~127.0.10.2~reviews-v1.default~default.svc.cluster.local",
	"sidecar~127.0.10.9~client.other~other.svc.cluster.local",
	"router~127.0.0.1~istio-ingressgateway.istio-system~istio-system.svc.cluster.local",
}

// TestCacheMatchesGenerate checks that Cache.Generate gives, for every golden case and
// proxy, exactly what Generate gives (so the goldens hold for the cached path), with one
// Cache reused across all the cases' meshes, and that proxies share outbound clusters.
func TestCacheMatchesGenerate(t *testing.T) {
	cases, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	base, err := os.ReadFile("testdata/_base.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cache Cache
	shared := 0
	for _, path := range cases {
		name := filepath.Base(path)
		if strings.HasPrefix(name, "_") || strings.HasSuffix(name, ".golden.yaml") {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		caseID, mesh := caseHeader(t, data)
		objs := append(loadObjects(t, "_base.yaml", base), loadObjects(t, name, data)...)
		m, _ := model.Build(objs, mesh)
		seen := map[string]*clusterpb.Cluster{}
		for _, id := range append([]string{caseID}, cacheProxies...) {
			p, err := model.ParseNodeID(id)
			if err != nil {
				t.Fatal(err)
			}
			got := cache.Generate(m, p)
			want := Generate(m, p)
			for _, sec := range []struct {
				name      string
				got, want []proto.Message
			}{
				{"listeners", got.Listeners, want.Listeners},
				{"routes", got.Routes, want.Routes},
				{"clusters", got.Clusters, want.Clusters},
				{"endpoints", got.Endpoints, want.Endpoints},
			} {
				if len(sec.got) != len(sec.want) {
					t.Fatalf("%s, proxy %s: cached %s: %d, want %d", name, id, sec.name, len(sec.got), len(sec.want))
				}
				for i := range sec.got {
					if !proto.Equal(sec.got[i], sec.want[i]) {
						t.Errorf("%s, proxy %s: cached %s %s differs from Generate's", name, id, sec.name, resourceName(sec.want[i]))
					}
				}
			}
			for _, c := range got.Clusters {
				c := c.(*clusterpb.Cluster)
				if !strings.HasPrefix(c.GetName(), "outbound|") {
					continue
				}
				if prev := seen[c.GetName()]; prev == c {
					shared++
				} else if prev == nil {
					seen[c.GetName()] = c
				}
			}
		}
	}
	if shared == 0 {
		t.Error("no outbound cluster was shared between proxies of one mesh")
	}
}
