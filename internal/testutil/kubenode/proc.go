package kubenode

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// proc is one node process (containerd, kube-scheduler, kubelet) logging to a file. It is
// stopped by cancelling its context: SIGTERM, then SIGKILL after its grace period.
type proc struct {
	name, log string
	cmd       *exec.Cmd
	cancel    context.CancelFunc
	done      chan struct{}
	err       error // set before done is closed
}

func startProc(name, bin string, args []string, env []string, logPath string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("kubenode: %s log: %w", name, err)
	}
	defer f.Close() // the child has its own descriptor
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 20 * time.Second
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	// Killed with the test process if it dies without stopping the node (a panic, a
	// timeout): the next Start sweeps what it left behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("kubenode: start %s: %w", name, err)
	}
	p := &proc{name: name, log: logPath, cmd: cmd, cancel: cancel, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends the process (SIGTERM, SIGKILL after 20 s) and waits for it.
func (p *proc) stop() {
	if p == nil {
		return
	}
	p.cancel()
	<-p.done
}

// tail is the last n lines of the process's log.
func (p *proc) tail(n int) string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	b = bytes.TrimRight(b, "\n")
	cut := len(b)
	for ; n > 0 && cut > 0; n-- {
		cut = bytes.LastIndexByte(b[:cut], '\n')
	}
	return string(b[cut+1:])
}

func (p *proc) exitError() error {
	return fmt.Errorf("kubenode: %s exited (%w); log %s ends:\n%s", p.name, p.err, p.log, p.tail(30))
}
