package h1server

import (
	"errors"
	"log"

	"golang.org/x/sys/unix"
)

// panicLog receives handler panics when the server has no ErrorLog.
var panicLog = log.Default()

// writeBufs writes bufs to the connection: one writev(2) on a plaintext TCP socket, else
// one write per buffer through the connection's wrappers (TLS).
func (c *conn) writeBufs(bufs [][]byte) error {
	iov := c.iov[:0]
	for _, b := range bufs {
		if len(b) > 0 {
			iov = append(iov, b)
		}
	}
	c.iov = iov[:0]
	switch {
	case len(iov) == 0:
		return nil
	case len(iov) == 1 || c.raw == nil:
		for _, b := range iov {
			if _, err := c.rwc.Write(b); err != nil {
				return err
			}
		}
		return nil
	}
	return c.writev(iov)
}

// writev writes iov with writev(2) on the raw socket. (A function of its own: the
// closure below captures iov, which would otherwise cost writeBufs an allocation on
// every call.)
func (c *conn) writev(iov [][]byte) error {
	var werr error
	err := c.raw.Write(func(fd uintptr) bool {
		for len(iov) > 0 {
			n, err := unix.Writev(int(fd), iov)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if errors.Is(err, unix.EAGAIN) {
				return false // wait until the socket is writable
			}
			if err != nil {
				werr = err
				return true
			}
			for n > 0 && len(iov) > 0 {
				if n >= len(iov[0]) {
					n -= len(iov[0])
					iov = iov[1:]
				} else {
					iov[0] = iov[0][n:]
					n = 0
				}
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	return werr
}
