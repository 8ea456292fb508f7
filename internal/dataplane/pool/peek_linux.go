package pool

import "github.com/lucid-mesh/lucid/internal/dataplane/sockio"

// peek reads without consuming and without blocking: (0, nil) is a FIN, EAGAIN means
// nothing arrived.
func peek(fd uintptr, b []byte) (int, error) {
	return sockio.Peek(fd, b)
}

// peekWorks says peek can tell an empty socket from one with bytes or a FIN.
const peekWorks = true
