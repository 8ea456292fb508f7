//go:build race && linux && !386

package sockio

import "syscall"

// The race detector takes the net package's socket calls as synchronisation: a write
// happens before the read that gets its bytes (syscall.Write and syscall.Read annotate
// one shared object), and a read writes its buffer. The raw calls are invisible to it, so
// under -race a handler that answered through sockio and a client that read the answer
// through net (or the other way round) would race on whatever the answer stands for.
// These give the raw calls net's annotations, in race builds only, at a cheap system
// call each.

// raceRead annotates a read of p from the socket fd: a zero-length read(2) returns at
// once and acquires what every write released; the copy marks p written.
func raceRead(fd uintptr, p []byte) {
	copy(p, p) //nolint:gocritic // a write of p, for the race detector
	_, _ = syscall.Read(int(fd), nil)
}

// raceWrite annotates a write about to be made: syscall.Write releases before its
// system call, which on no descriptor fails at once.
func raceWrite() { _, _ = syscall.Write(-1, nil) }
