package forward

import (
	"net"

	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// ConnectionCounter counts one opaque TCP connection's traffic for Istio's TCP metrics
// (stats.TCPConn implements it). Its methods must be safe for concurrent use.
type ConnectionCounter interface {
	AddSent(n int64)     // bytes sent to the downstream
	AddReceived(n int64) // bytes received from the downstream
	Close()              // the connection closed (once)
}

// OpenConnection counts one opaque TCP connection opened (istio_tcp_connections_opened_total)
// with the labels info has now, and returns its counters; a no-op counter when the
// Forwarder has no ConnectionMetrics.
func (f *Forwarder) OpenConnection(info *streaminfo.Info) ConnectionCounter {
	if f == nil || f.o.ConnectionMetrics == nil {
		return nopCounter{}
	}
	if info.Direction == "outbound" {
		info.Source = f.o.Self
	} else {
		info.Destination = f.o.Self
	}
	return f.o.ConnectionMetrics(info)
}

type nopCounter struct{}

func (nopCounter) AddSent(int64)     {}
func (nopCounter) AddReceived(int64) {}
func (nopCounter) Close()            {}

// CountConn wraps a downstream connection so that the bytes read from it (received) and
// written to it (sent) are counted as they move. CloseWrite is passed on (Pipe's
// half-close).
func CountConn(c net.Conn, cc ConnectionCounter) net.Conn {
	return &countedConn{Conn: c, cc: cc}
}

type countedConn struct {
	net.Conn
	cc ConnectionCounter
}

func (c *countedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.cc.AddReceived(int64(n))
	return n, err
}

func (c *countedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.cc.AddSent(int64(n))
	return n, err
}

func (c *countedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}
