package h1server

import "log"

// panicLog receives handler panics when the server has no ErrorLog.
var panicLog = log.Default()

// writeBufs writes bufs to the connection: in one system call on a plaintext TCP socket
// (sockio), else one write per buffer through the connection's wrappers (TLS).
func (c *conn) writeBufs(bufs [][]byte) error {
	if c.sock != nil {
		c.iov = append(c.iov[:0], bufs...) // Writev consumes its slices; bufs stay whole
		_, err := c.sock.Writev(c.iov)
		clear(c.iov) // an idle connection keeps no answer's buffers alive
		c.iov = c.iov[:0]
		return err
	}
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		if _, err := c.rwc.Write(b); err != nil {
			return err
		}
	}
	return nil
}
