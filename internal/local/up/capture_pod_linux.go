package up

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// A pod of `lucid up --capture` is held by a holder process (Kubernetes' pause container):
// `lucid internal-pod-hold`, started in a new network and mount namespace, makes its mounts
// private, binds the pod's hosts, resolv.conf and nsswitch.conf files over /etc's, brings lo up and sleeps.
// Every process of the pod (capture rules, sidecar, app, `lucid exec`) joins the holder's
// two namespaces (JoinPod). The holder dies with `lucid up` (parent-death signal), and the
// namespaces with the last process in them: a crash leaves no namespace behind.

// holdReady is the line the holder prints once the pod is set up.
const holdReady = "pod ready"

// HoldPod is the holder's body (`lucid internal-pod-hold`): it runs in the pod's fresh
// network and mount namespaces and returns only on error.
func HoldPod(hosts, resolv, nsswitch string, out io.Writer) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making the pod's mounts private: %w", err)
	}
	for _, b := range [][2]string{{hosts, "/etc/hosts"}, {resolv, "/etc/resolv.conf"}, {nsswitch, "/etc/nsswitch.conf"}} {
		if b[0] == "" {
			continue
		}
		if err := unix.Mount(b[0], b[1], "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind-mounting %s over %s in the pod: %w", b[0], b[1], err)
		}
	}
	lo, err := netlink.LinkByName("lo")
	if err == nil {
		err = netlink.LinkSetUp(lo)
	}
	if err != nil {
		return fmt.Errorf("bringing the pod's loopback up: %w", err)
	}
	_, _ = fmt.Fprintln(out, holdReady)
	for {
		time.Sleep(time.Hour) // until lucid up kills the holder (or dies: parent-death signal)
	}
}

// startHolder starts exe's holder for a pod and waits until it is ready.
func startHolder(exe, hosts, resolv, nsswitch string) (*exec.Cmd, error) {
	cmd := exec.Command(exe, "internal-pod-hold", "--hosts", hosts, "--resolv", resolv, "--nsswitch", nsswitch)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNET | syscall.CLONE_NEWNS,
		Setpgid:    true, // Ctrl-C reaches lucid up only
		Pdeathsig:  syscall.SIGKILL,
	}
	var errOut strings.Builder
	cmd.Stderr = &errOut
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("creating the pod's namespaces: %w", err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		ok := sc.Scan() && sc.Text() == holdReady
		ready <- ok
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case ok := <-ready:
		if ok {
			return cmd, nil
		}
	case <-time.After(10 * time.Second):
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	return nil, fmt.Errorf("the pod's holder did not start: %s", strings.TrimSpace(errOut.String()))
}

// stopHolder kills a pod's holder; the namespaces go with the pod's last process.
func stopHolder(cmd *exec.Cmd) {
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

// JoinPod makes the calling process (one thread, locked) join the pod held by holder:
// its mount namespace (the pod's /etc/hosts and resolv.conf) and network namespace. It
// must be followed by an exec (ExecAs): other threads of the process stay outside.
func JoinPod(holder int) error {
	runtime.LockOSThread() // never unlocked: the process execs from this thread
	cwd, _ := os.Getwd()
	// A thread that shares its filesystem context cannot change mount namespace.
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare(CLONE_FS): %w", err)
	}
	for _, ns := range []struct {
		name string
		flag int
	}{{"mnt", unix.CLONE_NEWNS}, {"net", unix.CLONE_NEWNET}} {
		path := fmt.Sprintf("/proc/%d/ns/%s", holder, ns.name)
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("the pod is gone (%s): %w", path, err)
		}
		err = unix.Setns(fd, ns.flag)
		_ = unix.Close(fd)
		if err != nil {
			return fmt.Errorf("entering the pod's %s namespace: %w (needs root)", ns.name, err)
		}
	}
	if cwd != "" {
		_ = unix.Chdir(cwd) // the pod sees the same files; stay where the user was
	}
	return nil
}

// ExecAs replaces the process with argv run as uid/gid (no change when uid < 0), killed
// when its parent dies if pdeath is set. The program is opened before the uid changes, so
// it runs even from a directory the uid cannot enter.
func ExecAs(uid, gid int, pdeath bool, argv []string) error {
	if len(argv) == 0 {
		return errors.New("no command to run")
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	ppid := os.Getppid()
	if uid >= 0 {
		if err := syscall.Setgroups(nil); err != nil {
			return fmt.Errorf("setgroups: %w", err)
		}
		if err := syscall.Setgid(gid); err != nil {
			return fmt.Errorf("setgid %d: %w", gid, err)
		}
		if err := syscall.Setuid(uid); err != nil {
			return fmt.Errorf("setuid %d: %w", uid, err)
		}
	}
	if pdeath {
		// A change of uid clears the parent-death signal: set it again, then make sure
		// the parent did not die meanwhile.
		if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0, 0, 0); err != nil {
			return fmt.Errorf("prctl(PR_SET_PDEATHSIG): %w", err)
		}
		if os.Getppid() != ppid {
			os.Exit(1)
		}
	}
	err = syscall.Exec(path, argv, os.Environ())
	if errors.Is(err, syscall.EACCES) {
		// The uid may not search the program's directory: run the file opened as root.
		err = syscall.Exec(fmt.Sprintf("/proc/self/fd/%d", f.Fd()), argv, os.Environ())
	}
	return fmt.Errorf("running %s: %w", path, err)
}
