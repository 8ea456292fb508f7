package agent

import (
	"net/netip"
	"testing"

	"github.com/lucid-mesh/lucid/internal/dataplane/xdsclient"
)

func TestReadiness(t *testing.T) {
	got := func(s xdsclient.Status, applied bool, missing []string, draining bool) string {
		if err := readiness(s, applied, missing, draining); err != nil {
			return err.Error()
		}
		return "ready"
	}
	st := func(lds, cds bool, nack string) xdsclient.Status {
		return xdsclient.Status{Types: map[string]xdsclient.TypeStatus{
			"LDS": {Received: lds, NackReason: nack}, "CDS": {Received: cds},
		}}
	}
	tests := []struct {
		name     string
		s        xdsclient.Status
		applied  bool
		missing  []string
		draining bool
		want     string
	}{
		{"nothing yet", st(false, false, ""), false, nil, false, "config not received from XDS server (is the control plane running?)"},
		{"rejected", st(false, true, `listener "x": bind: address in use`), false, nil, false, `config received from XDS server, but was rejected: LDS: listener "x": bind: address in use`},
		{"half", st(false, true, ""), false, nil, false, "config not fully received from XDS server: listeners received=false, clusters received=true"},
		{"warming", st(true, true, ""), true, []string{"route config 9080"}, false, "config not fully received from XDS server: waiting for route config 9080"},
		{"ready", st(true, true, ""), true, nil, false, "ready"},
		{"draining", st(true, true, ""), true, nil, true, "server is draining"},
	}
	for _, tc := range tests {
		if g := got(tc.s, tc.applied, tc.missing, tc.draining); g != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, g, tc.want)
		}
	}
}

func TestNodeID(t *testing.T) {
	if got := NodeID(netip.MustParseAddr("127.0.10.2"), "reviews-v1", "default"); got != "sidecar~127.0.10.2~reviews-v1.default~default.svc.cluster.local" {
		t.Fatal(got)
	}
}
