package kubetest

import "syscall"

// sysProcAttr kills the child when the test process dies without calling Stop (a panic,
// a timeout, ^C), so no etcd or kube-apiserver outlives its test.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
