package kubenode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/testutil"
)

// Require skips t when this machine cannot run a node (see Check), saying what is missing;
// under CI (env CI set) it fails instead, so CI never passes by skipping.
func Require(t testing.TB) {
	t.Helper()
	err := Check()
	if err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("CI must run the Kubernetes node tests: %v", err)
	}
	t.Skipf("skipped: %v", err)
}

var shared testutil.PackageShared[*Node]

// SharedMain lets a test package share one node between its tests (a start costs seconds,
// the images tens of seconds):
//
//	func TestMain(m *testing.M) { os.Exit(kubenode.SharedMain(m).Run()) }
//
// The node starts on the first Shared call and stops after the last test. When a test
// failed the node's log tails are printed; anything the node left on the machine fails
// the run.
func SharedMain(m *testing.M) testutil.Runner {
	return shared.Main(m, func(n *Node, code int) int {
		if code != 0 {
			fmt.Fprintf(os.Stderr, "kubenode: tests failed; the node's logs:\n%s", n.Logs(40))
		}
		n.hold()
		if err := n.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: stopping the node: %v\n", err)
			return 1
		}
		fmt.Fprintln(os.Stderr, "kubenode: node stopped, nothing left on the machine (bridge, iptables, cgroups, mounts, netns files, processes)")
		return code
	})
}

// hold keeps the node running for $LUCID_KUBENODE_HOLD (a duration) before it is stopped,
// to look at it with kubectl (KUBECONFIG printed) after a run.
func (n *Node) hold() {
	d, err := time.ParseDuration(os.Getenv("LUCID_KUBENODE_HOLD"))
	if err != nil || d <= 0 {
		return
	}
	fmt.Fprintf(os.Stderr, "kubenode: holding the node for %s (LUCID_KUBENODE_HOLD): KUBECONFIG=%s\n", d, n.Kubeconfig)
	time.Sleep(d)
}

// Shared returns the package's node, starting it on first use (Require first). The
// package's TestMain must use SharedMain.
func Shared(t testing.TB) *Node {
	t.Helper()
	Require(t)
	n, err := shared.Get(t, "kubenode.SharedMain", func() (*Node, error) {
		// Not t.Logf: the node outlives the test that started it.
		logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
		return Start(context.Background(), Options{Logf: logf})
	})
	if err != nil {
		if errors.Is(err, ErrUnavailable) && os.Getenv("CI") == "" {
			t.Skipf("skipped: %v", err)
		}
		t.Fatal(err)
	}
	return n
}
