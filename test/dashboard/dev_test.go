package dashboard

import (
	"os"
	"testing"
	"time"
)

// TestHold runs the mesh with traffic and keeps it up for LUCID_DASHBOARD_HOLD (a
// duration) so a person can open the dashboard: go test ./test/dashboard -run TestHold -v
// with LUCID_DASHBOARD_HOLD=10m, then http://127.0.124.100:15014/dashboard/.
func TestHold(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("LUCID_DASHBOARD_HOLD"))
	if err != nil {
		t.Skip("set LUCID_DASHBOARD_HOLD=10m to run the mesh for a person to look at")
	}
	b := startBookinfo(t)
	tr := startTraffic(t, 10)
	tr.startV3()
	t.Logf("dashboard: http://%s/dashboard/", b.Debug())
	time.Sleep(d)
}
