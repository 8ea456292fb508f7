package up

import "syscall"

// childAttr puts a child in its own process group: the terminal's Ctrl-C reaches lucid up
// only, which stops the children in order, and a child's own children are stopped with
// it. Pdeathsig: if lucid up itself is killed, its children die too.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
