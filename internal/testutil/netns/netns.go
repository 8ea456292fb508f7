// Package netns runs a test inside a private network namespace (tests only): the parent test
// re-executes the test binary under `unshare -n` with loopback up, and the named child test
// does the work there, so iptables rules, interfaces and routes touch nothing outside it.
// Where namespaces cannot be created (not root, no unshare/ip/iptables, a sandbox that
// forbids it) the test is skipped with the reason, except under CI (env CI set), where it
// fails: CI must run them.
package netns

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ChildEnv names the child test a re-executed test binary runs (Child checks it); set it
// when re-executing a child yourself (e.g. under setpriv).
const ChildEnv = "LUCID_NETNS_CHILD"

// Run runs the test named child (a top-level test of the same binary that starts with
// Child) in a new network namespace and fails t if the child fails. tools are the binaries
// the child needs besides unshare and ip.
func Run(t *testing.T, child string, tools ...string) {
	t.Helper()
	run(t, child, []string{"-n"}, tools)
}

// RunWithMounts is Run with a private mount namespace too (`unshare -n -m`): the child may
// bind-mount its own /etc/hosts or /etc/resolv.conf over the machine's, as a pod has its own.
func RunWithMounts(t *testing.T, child string, tools ...string) {
	t.Helper()
	run(t, child, []string{"-n", "-m", "--propagation", "private"}, append(tools, "mount"))
}

func run(t *testing.T, child string, unshare, tools []string) {
	t.Helper()
	if os.Getenv(ChildEnv) != "" {
		t.Skip("parent only")
	}
	unavailable := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") != "" {
			t.Fatalf("CI must run the network-namespace tests: "+format, args...)
		}
		t.Skipf("skipped: cannot run in a private network namespace here: "+format, args...)
	}
	if os.Geteuid() != 0 {
		unavailable("needs root (unshare -n, iptables)")
	}
	for _, tool := range append([]string{"unshare", "ip"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable("needs %s in PATH: %v", tool, err)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	args := append(append([]string{}, unshare...), "sh", "-c", `ip link set lo up && exec "$0" -test.run "^$1\$" -test.v -test.count=1`, exe, child)
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(os.Environ(), ChildEnv+"="+child)
	out, err := cmd.CombinedOutput()
	if err != nil && strings.Contains(string(out), "unshare failed") {
		unavailable("%v: %s", err, out)
	}
	t.Logf("in a private network namespace:\n%s", out)
	if err != nil {
		t.Fatalf("%s failed in its network namespace: %v", child, err)
	}
	if !strings.Contains(string(out), "--- PASS: "+child) {
		t.Fatalf("%s did not run in the network namespace", child)
	}
}

// Child skips t unless this process is the namespace child started by Run for this test.
func Child(t *testing.T) {
	t.Helper()
	if os.Getenv(ChildEnv) != t.Name() {
		t.Skip("runs in a private network namespace, started by its parent test")
	}
}

// Sh runs a shell command in the (child's) namespace and fails t if it fails.
func Sh(t *testing.T, script string) string {
	t.Helper()
	out, err := exec.Command("sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return string(out)
}

// Peer creates a second network namespace beside the child's (a process holding it until
// the test ends: `unshare -n sleep`) and returns the holder's pid, for `ip link set … netns
// <pid>` and `nsenter -t <pid> -n`: the other end of a veth pair, another pod, the cluster.
func Peer(t *testing.T) int {
	t.Helper()
	holder := exec.Command("unshare", "-n", "sleep", "3600")
	release, err := StartTied(holder) // nothing left if the test dies
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = holder.Process.Kill(); _ = holder.Wait(); release() })
	pid := holder.Process.Pid
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid)); err == nil && ns != self {
			return pid // unshare has made the namespace and runs sleep in it
		}
		if time.Now().After(deadline) {
			t.Fatal("the peer network namespace was not created within 5s")
		}
	}
}

// StartTied starts cmd so that it is killed (SIGKILL) if the test process dies, and only
// then. Linux sends a child's parent-death signal when the *thread* that forked it exits,
// and Go ends threads: a goroutine that exits while locked to its thread (as a test that
// changes one thread's uid does) takes the thread with it. So the fork runs on a thread
// locked and kept alive until release is called (after cmd has been waited for).
func StartTied(cmd *exec.Cmd) (release func(), err error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	started, done := make(chan error, 1), make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		err := cmd.Start()
		started <- err
		if err == nil {
			<-done
		}
	}()
	if err := <-started; err != nil {
		return func() {}, err
	}
	var once sync.Once
	return func() { once.Do(func() { close(done) }) }, nil
}
