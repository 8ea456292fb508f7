package proxy

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The acceptance scenario with a real blackhole: upstream A's packets are dropped by
// iptables, so no FIN or RST ever arrives. It needs root; the test re-runs itself inside a
// fresh network namespace (unshare -n) whose loopback is private, so the DROP rules touch
// nothing outside it.

const netnsChildEnv = "LUCID_STREAMS_NETNS_CHILD"

func TestWatchLeavesBlackholedUpstreamNetns(t *testing.T) {
	if os.Getenv(netnsChildEnv) != "" {
		t.Skip("parent only")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace and iptables")
	}
	for _, tool := range []string{"unshare", "ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("unshare", "-n", "sh", "-c", `ip link set lo up && exec "$0" -test.run '^TestNetnsChildBlackhole$' -test.v -test.count=1`, exe)
	cmd.Env = append(os.Environ(), netnsChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("in a network namespace:\n%s", out)
	if err != nil {
		if strings.Contains(string(out), "Operation not permitted") {
			t.Skipf("cannot create a network namespace here: %v", err)
		}
		t.Fatalf("scenario in the network namespace failed: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: TestNetnsChildBlackhole") {
		t.Fatal("the child did not run the scenario")
	}
}

// TestNetnsChildBlackhole runs only inside the namespace made by the test above.
func TestNetnsChildBlackhole(t *testing.T) {
	if os.Getenv(netnsChildEnv) == "" {
		t.Skip("runs inside TestWatchLeavesBlackholedUpstreamNetns")
	}
	const a = "127.0.93.11"
	startAPIServer(t, a+":8080", "A")
	blackhole := func() {
		for _, args := range [][]string{
			{"-I", "INPUT", "-d", a, "-j", "DROP"},
			{"-I", "INPUT", "-s", a, "-j", "DROP"},
		} {
			if out, err := exec.Command("iptables", args...).CombinedOutput(); err != nil {
				t.Fatalf("iptables %v: %v\n%s", args, err, out)
			}
		}
	}
	// PING 300 ms + 300 ms, TCP keepalive 1 s + 1 probe; the re-watch may first time out
	// connecting to A (connect timeout 1 s) before the retry reaches B.
	runWatchScenario(t, "127.0.93.1", a+":8080", "127.0.93.12:8080", blackhole, 8*time.Second)
}
