package kubenode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// LockPath is the file whose lock makes a node one per machine: its ports (10250, 10248,
// 10259), the bridge, the pod subnet and the /kubepods cgroups are machine-wide.
var LockPath = filepath.Join(os.TempDir(), "lucid-kubenode.lock")

// lock takes the machine's node lock, waiting for another test process to release it
// until ctx ends. The lock is released when the file is closed (or the process dies).
func lock(ctx context.Context, logf func(string, ...any)) (*os.File, error) {
	f, err := os.OpenFile(LockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("kubenode: lock: %w", err)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	waiting := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			_ = f.Truncate(0)
			_, _ = fmt.Fprintf(f, "%d\n", os.Getpid())
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = f.Close()
			return nil, fmt.Errorf("kubenode: lock %s: %w", LockPath, err)
		}
		if !waiting {
			holder, _ := os.ReadFile(LockPath)
			logf("kubenode: another test process (pid %s) runs the node; waiting for %s", trimNL(holder), LockPath)
			waiting = true
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("kubenode: %s still locked by another test process: %w", LockPath, ctx.Err())
		case <-tick.C:
		}
	}
}

func trimNL(b []byte) string {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return string(b)
}
