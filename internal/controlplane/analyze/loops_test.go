package analyze

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestInboundLoops: LUC0009 names a WorkloadEntry whose inbound endpoint is its own
// sidecar's listener, or another workload's, and no other.
func TestInboundLoops(t *testing.T) {
	var got []string
	for _, m := range run(t, filepath.Join("testdata", "loops")) {
		if m.Code == "LUC0009" {
			got = append(got, m.String())
		}
	}
	want := []string{
		"Error [LUC0009] (WorkloadEntry default/pointer loops.yaml:33) WorkloadEntry pointer's inbound endpoint 127.0.30.2:9080 is WorkloadEntry good.default's sidecar's inbound listener",
		"Error [LUC0009] (WorkloadEntry default/selfie loops.yaml:19) WorkloadEntry selfie's inbound endpoint 127.0.0.1:9080 is its own sidecar's inbound listener",
	}
	if len(got) != len(want) {
		t.Fatalf("got %d LUC0009 messages, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) || !strings.Contains(got[i], "fix: set the lucid.dev/app-address annotation") {
			t.Errorf("message %d:\n%s\nwant it to start with\n%s", i, got[i], want[i])
		}
	}
}
