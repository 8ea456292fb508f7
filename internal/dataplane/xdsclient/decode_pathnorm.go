package xdsclient

import (
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// decodePathNormalization reads the connection manager's path settings besides
// normalize_path and merge_slashes: path_with_escaped_slashes_action (Istio's
// DECODE_AND_MERGE_SLASHES sets UNESCAPE_AND_FORWARD) and xff_num_trusted_hops, which
// decides the remote address authorization sees.
func decodePathNormalization(out *resource.HTTPManager, h *hcmpb.HttpConnectionManager) {
	switch h.GetPathWithEscapedSlashesAction() {
	case hcmpb.HttpConnectionManager_REJECT_REQUEST:
		out.EscapedSlashes = resource.EscapedSlashesReject
	case hcmpb.HttpConnectionManager_UNESCAPE_AND_REDIRECT:
		out.EscapedSlashes = resource.EscapedSlashesUnescapeAndRedirect
	case hcmpb.HttpConnectionManager_UNESCAPE_AND_FORWARD:
		out.EscapedSlashes = resource.EscapedSlashesUnescapeAndForward
	default: // IMPLEMENTATION_SPECIFIC_DEFAULT, KEEP_UNCHANGED
		out.EscapedSlashes = resource.EscapedSlashesKeep
	}
	out.XFFNumTrustedHops = h.GetXffNumTrustedHops()
}
