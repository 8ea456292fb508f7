package translate

import (
	"testing"

	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// TestPathNormalization: every HTTP connection manager of a sidecar (outbound and inbound)
// gets the settings Istio generates for meshConfig.pathNormalization.
func TestPathNormalization(t *testing.T) {
	type nt = meshv1alpha1.MeshConfig_ProxyPathNormalization_NormalizationType
	for _, c := range []struct {
		mode             nt
		normalize, merge bool
		escaped          hcmpb.HttpConnectionManager_PathWithEscapedSlashesAction
	}{
		{meshv1alpha1.MeshConfig_ProxyPathNormalization_DEFAULT, true, false, hcmpb.HttpConnectionManager_IMPLEMENTATION_SPECIFIC_DEFAULT},
		{meshv1alpha1.MeshConfig_ProxyPathNormalization_BASE, true, false, hcmpb.HttpConnectionManager_IMPLEMENTATION_SPECIFIC_DEFAULT},
		{meshv1alpha1.MeshConfig_ProxyPathNormalization_NONE, false, false, hcmpb.HttpConnectionManager_IMPLEMENTATION_SPECIFIC_DEFAULT},
		{meshv1alpha1.MeshConfig_ProxyPathNormalization_MERGE_SLASHES, true, true, hcmpb.HttpConnectionManager_IMPLEMENTATION_SPECIFIC_DEFAULT},
		{meshv1alpha1.MeshConfig_ProxyPathNormalization_DECODE_AND_MERGE_SLASHES, true, true, hcmpb.HttpConnectionManager_UNESCAPE_AND_FORWARD},
	} {
		t.Run(c.mode.String(), func(t *testing.T) {
			mesh := &meshv1alpha1.MeshConfig{PathNormalization: &meshv1alpha1.MeshConfig_ProxyPathNormalization{Normalization: c.mode}}
			m, _ := model.Build(loadObjects(t, "_base.yaml", baseObjects(t)), mesh)
			res := Generate(m, m.ResolveProxy(proxy(t, productpage)))
			n := 0
			for _, msg := range res.Listeners {
				l := msg.(*listenerpb.Listener)
				for _, fc := range l.GetFilterChains() {
					for _, f := range fc.GetFilters() {
						if f.GetName() != HCMFilter {
							continue
						}
						var h hcmpb.HttpConnectionManager
						if err := f.GetTypedConfig().UnmarshalTo(&h); err != nil {
							t.Fatal(err)
						}
						n++
						if h.GetNormalizePath().GetValue() != c.normalize || h.GetMergeSlashes() != c.merge || h.GetPathWithEscapedSlashesAction() != c.escaped {
							t.Errorf("%s %s: normalize_path %v merge_slashes %v escaped slashes %v; want %v %v %v", l.GetName(), h.GetStatPrefix(),
								h.GetNormalizePath().GetValue(), h.GetMergeSlashes(), h.GetPathWithEscapedSlashesAction(), c.normalize, c.merge, c.escaped)
						}
					}
				}
			}
			if n == 0 {
				t.Fatal("no HTTP connection manager generated")
			}
		})
	}
}
