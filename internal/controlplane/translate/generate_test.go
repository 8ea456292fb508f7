package translate

import (
	"net/netip"
	"os"
	"testing"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// TestUnknownProxy: a proxy with no WorkloadEntry still gets valid outbound config and no
// inbound chains.
func TestUnknownProxy(t *testing.T) {
	base, err := os.ReadFile("testdata/_base.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := model.Build(loadObjects(t, "_base.yaml", base), nil)
	res := Generate(m, &model.Proxy{Type: "sidecar", IP: netip.MustParseAddr("127.0.99.1"), Name: "ghost", Namespace: "default"})
	if len(res.Listeners) != 4 { // virtualInbound, virtualOutbound, 0.0.0.0_9080, 0.0.0.0_9090
		t.Errorf("%d listeners, want 4", len(res.Listeners))
	}
	for _, c := range res.Clusters {
		if name := resourceName(c); len(name) > 8 && name[:8] == "inbound|" {
			t.Errorf("unexpected inbound cluster %s", name)
		}
		if err := c.(validator).ValidateAll(); err != nil {
			t.Error(err)
		}
	}
}

func BenchmarkGenerate(b *testing.B) {
	base, err := os.ReadFile("testdata/_base.yaml")
	if err != nil {
		b.Fatal(err)
	}
	m, _ := model.Build(loadObjects(b, "_base.yaml", base), nil)
	p, _ := model.ParseNodeID("sidecar~127.0.10.1~productpage-v1.default~default.svc.cluster.local")
	for b.Loop() {
		Generate(m, p)
	}
}
