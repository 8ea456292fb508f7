package translate

import (
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// setPathNormalization sets an HTTP connection manager's path normalisation from
// meshConfig.pathNormalization, as Istio does on every sidecar and gateway HCM:
//
//	NONE                     normalize_path false
//	BASE (DEFAULT)           normalize_path true
//	MERGE_SLASHES            normalize_path, merge_slashes
//	DECODE_AND_MERGE_SLASHES normalize_path, merge_slashes, UNESCAPE_AND_FORWARD
//
// The proxy normalises before routing and authorization (forward/pathnorm.go), so an
// AuthorizationPolicy path cannot be bypassed with "..", "%2e" or (when decoding) "%2F".
func setPathNormalization(m *model.Mesh, h *hcmpb.HttpConnectionManager) {
	h.NormalizePath = wrapperspb.Bool(true)
	switch m.PathNormalization() {
	case meshv1alpha1.MeshConfig_ProxyPathNormalization_NONE:
		h.NormalizePath = wrapperspb.Bool(false)
	case meshv1alpha1.MeshConfig_ProxyPathNormalization_MERGE_SLASHES:
		h.MergeSlashes = true
	case meshv1alpha1.MeshConfig_ProxyPathNormalization_DECODE_AND_MERGE_SLASHES:
		h.MergeSlashes = true
		h.PathWithEscapedSlashesAction = hcmpb.HttpConnectionManager_UNESCAPE_AND_FORWARD
	}
}
