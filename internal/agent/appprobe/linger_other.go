//go:build !unix

package appprobe

import "syscall"

func setLinger(_, _ string, _ syscall.RawConn) error { return nil }
