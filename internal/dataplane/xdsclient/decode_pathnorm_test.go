package xdsclient

import (
	"testing"

	routerpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// TestDecodePathNormalization: the connection manager's path settings and trusted hops
// reach the proxy, each escaped-slash action as itself.
func TestDecodePathNormalization(t *testing.T) {
	for action, want := range map[hcmpb.HttpConnectionManager_PathWithEscapedSlashesAction]resource.EscapedSlashesAction{
		hcmpb.HttpConnectionManager_IMPLEMENTATION_SPECIFIC_DEFAULT: resource.EscapedSlashesKeep,
		hcmpb.HttpConnectionManager_KEEP_UNCHANGED:                  resource.EscapedSlashesKeep,
		hcmpb.HttpConnectionManager_REJECT_REQUEST:                  resource.EscapedSlashesReject,
		hcmpb.HttpConnectionManager_UNESCAPE_AND_REDIRECT:           resource.EscapedSlashesUnescapeAndRedirect,
		hcmpb.HttpConnectionManager_UNESCAPE_AND_FORWARD:            resource.EscapedSlashesUnescapeAndForward,
	} {
		h := &hcmpb.HttpConnectionManager{
			StatPrefix:     "inbound_0.0.0.0_8000",
			RouteSpecifier: &hcmpb.HttpConnectionManager_Rds{Rds: &hcmpb.Rds{RouteConfigName: "8000"}},
			HttpFilters: []*hcmpb.HttpFilter{{Name: routerFilterName,
				ConfigType: &hcmpb.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &routerpb.Router{})}}},
			NormalizePath: wrapperspb.Bool(true), MergeSlashes: true,
			PathWithEscapedSlashesAction: action, XffNumTrustedHops: 2,
		}
		got, err := decodeHCM(mustAny(t, h))
		if err != nil {
			t.Fatalf("%v: %v", action, err)
		}
		if !got.NormalizePath || !got.MergeSlashes || got.EscapedSlashes != want || got.XFFNumTrustedHops != 2 {
			t.Errorf("%v: normalize %v merge %v escaped %v hops %d; want true true %v 2", action, got.NormalizePath, got.MergeSlashes, got.EscapedSlashes, got.XFFNumTrustedHops, want)
		}
	}
}
