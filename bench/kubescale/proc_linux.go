package main

import "syscall"

// childAttr makes the control-plane child die with this program, however it ends.
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
