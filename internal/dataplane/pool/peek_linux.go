package pool

import "syscall"

// peek reads without consuming and without blocking: (0, nil) is a FIN, EAGAIN means
// nothing arrived.
func peek(fd uintptr, b []byte) (int, error) {
	n, _, err := syscall.Recvfrom(int(fd), b, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return n, err
}

// peekWorks says peek can tell an empty socket from one with bytes or a FIN.
const peekWorks = true
