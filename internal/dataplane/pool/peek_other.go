//go:build !linux

package pool

import "syscall"

// peek is not available here: every idle connection looks alive (the retry of requests
// that fail on a reused connection still covers the keep-alive race).
func peek(uintptr, []byte) (int, error) { return 0, syscall.EAGAIN }

// peekWorks says peek can tell an empty socket from one with bytes or a FIN.
const peekWorks = false
