package up

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// groupRunning sees a live process of a group, and waitGroupGone returns once a killed
// group has no process left but zombies.
func TestWaitGroupGone(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start sleep: %v", err)
	}
	pgid := cmd.Process.Pid
	if !groupRunning(pgid) {
		t.Fatalf("group %d of a running sleep not found", pgid)
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	waitGroupGone(pgid, 5*time.Second) // not reaped yet: a zombie, which does not count
	if groupRunning(pgid) {
		t.Fatalf("group %d still running after waitGroupGone", pgid)
	}
	_ = cmd.Wait()
}
