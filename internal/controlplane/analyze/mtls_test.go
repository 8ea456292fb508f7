package analyze

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestMTLSConflicts: LUC0015 names a DestinationRule that disables TLS towards a STRICT
// workload with a sidecar, and not one towards a workload without a sidecar.
func TestMTLSConflicts(t *testing.T) {
	var got []string
	for _, m := range run(t, filepath.Join("testdata", "mtls")) {
		if m.Code == "LUC0015" {
			got = append(got, m.String())
		}
	}
	want := "Error [LUC0015] (DestinationRule default/web mtls.yaml:25) DestinationRule web sets tls.mode DISABLE for web.default.svc.cluster.local port 8080, but workload web requires mutual TLS there (PeerAuthentication istio-system/default is STRICT)"
	if len(got) != 1 || !strings.HasPrefix(got[0], want) || !strings.Contains(got[0], "fix: remove tls.mode DISABLE") {
		t.Fatalf("LUC0015 messages:\n%s\nwant one starting with\n%s", strings.Join(got, "\n"), want)
	}
}
