package translate

import (
	"net/netip"
	"testing"

	originalsrcpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/original_src/v3"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// A sidecar captured with TPROXY gets Istio's original_src (mark 1337) on virtualInbound,
// first of its listener filters; under REDIRECT it has none.
func TestVirtualInboundOriginalSrc(t *testing.T) {
	m, _ := model.Build(loadObjects(t, "mesh.yaml", []byte(inboundSniffMeshYAML)), nil)
	for _, tproxy := range []bool{true, false} {
		res := Generate(m, &model.Proxy{Type: "sidecar", IP: netip.MustParseAddr("127.0.163.62"), Name: "app", Namespace: "default", TProxy: tproxy})
		vi := findListener(res, VirtualInbound)
		if err := vi.ValidateAll(); err != nil {
			t.Fatal(err)
		}
		var marks []uint32
		for i, lf := range vi.GetListenerFilters() {
			if lf.GetName() != "envoy.filters.listener.original_src" {
				continue
			}
			var cfg originalsrcpb.OriginalSrc
			if err := lf.GetTypedConfig().UnmarshalTo(&cfg); err != nil || i != 0 {
				t.Fatalf("original_src at %d: %v", i, err)
			}
			marks = append(marks, cfg.GetMark())
		}
		if tproxy && (len(marks) != 1 || marks[0] != 1337) || !tproxy && len(marks) != 0 {
			t.Errorf("TPROXY %v: original_src marks %v", tproxy, marks)
		}
	}
}
