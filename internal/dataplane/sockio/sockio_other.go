//go:build !linux || 386

package sockio

import (
	"io"
	"syscall"
)

const (
	supported = false
	msgPeek   = 0
)

var eof = io.EOF

func recv(uintptr, []byte, int) (int, syscall.Errno) { return 0, syscall.ENOSYS }

func shutdown(uintptr) {}

type vecScratch struct{}

func (*vecScratch) send(uintptr, [][]byte) (int, syscall.Errno) { return 0, syscall.ENOSYS }
func (*vecScratch) clear()                                      {}
