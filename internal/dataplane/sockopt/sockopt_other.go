//go:build !linux

package sockopt

import (
	"syscall"
	"time"
)

func control(syscall.RawConn, time.Duration) error { return nil }

func controlAll(syscall.RawConn, Keepalive) error { return nil }

// Read is not supported outside Linux.
func Read(syscall.RawConn) (Keepalive, error) { return Keepalive{}, ErrUnsupported }
