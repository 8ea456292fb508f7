package xdsclient

import (
	"testing"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

func TestUserAgentBuildVersion(t *testing.T) {
	for _, tc := range []struct {
		build         string
		major, minor  uint32
		patch         uint32
		label, status string
	}{
		{build: "0123abc/v9.9.9/Clean/RELEASE/go1.99", major: 9, minor: 9, patch: 9, status: "Clean"},
		{build: "0123abc/1.2.3-rc.1/Modified/RELEASE/go1.26.8", major: 1, minor: 2, patch: 3, label: "rc.1", status: "Modified"},
		{build: "unknown/dev/Modified/RELEASE/go1.26.8", label: "dev", status: "Modified"},
		{build: "unknown/v1.x.3/Clean/RELEASE/go1.26.8", label: "v1.x.3", status: "Clean"},
	} {
		n := &corepb.Node{}
		setUserAgentVersion(n, tc.build)
		bv := n.GetUserAgentBuildVersion()
		v, md := bv.GetVersion(), bv.GetMetadata().GetFields()
		if v.GetMajorNumber() != tc.major || v.GetMinorNumber() != tc.minor || v.GetPatch() != tc.patch ||
			md["build.label"].GetStringValue() != tc.label || md["revision.status"].GetStringValue() != tc.status ||
			md["build.type"].GetStringValue() != "RELEASE" || md["revision.sha"] == nil || md["ssl.version"] == nil {
			t.Errorf("%s: %v", tc.build, bv)
		}
	}
	n := &corepb.Node{}
	setUserAgentVersion(n, "dev")
	if n.GetUserAgentVersion() != "dev" {
		t.Errorf("a plain version: %v", n)
	}
}
