package forward

import (
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// StreamConn is an HTTP/2 request stream seen as a connection: reads come from the request
// body, writes go to the response and are flushed at once; the handler returning ends the
// stream. It serves CONNECT tunnels (proxy/connect.go) and extended CONNECT WebSockets
// (xconnect.go).
type StreamConn struct {
	w         http.ResponseWriter
	rc        *http.ResponseController
	r         *http.Request
	halfClose bool

	mu     sync.Mutex
	closed bool // no more writes
}

// NewStreamConn wraps the stream of r. With halfClose (a TCP tunnel), CloseWrite only stops
// writes and the downstream may go on sending; without it (WebSocket, which has no
// half-close), CloseWrite closes the request body too, so a pipe reading it ends.
func NewStreamConn(w http.ResponseWriter, r *http.Request, halfClose bool) *StreamConn {
	return &StreamConn{w: w, rc: http.NewResponseController(w), r: r, halfClose: halfClose}
}

func (c *StreamConn) Read(b []byte) (int, error) { return c.r.Body.Read(b) }

func (c *StreamConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	n, err := c.w.Write(b)
	if err == nil {
		err = c.rc.Flush()
	}
	return n, err
}

// CloseWrite ends writing (see NewStreamConn for the body).
func (c *StreamConn) CloseWrite() error {
	if !c.halfClose {
		return c.Close()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

// Close ends writing and closes the request body.
func (c *StreamConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return c.r.Body.Close()
}

// LocalAddr is the downstream connection's local address.
func (c *StreamConn) LocalAddr() net.Addr {
	if a, ok := c.r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		return a
	}
	return &net.TCPAddr{}
}

// RemoteAddr is the downstream peer.
func (c *StreamConn) RemoteAddr() net.Addr {
	if a, err := net.ResolveTCPAddr("tcp", c.r.RemoteAddr); err == nil {
		return a
	}
	return &net.TCPAddr{}
}

// SetDeadline reports os.ErrNoDeadline: a stream has no deadlines of its own (the request context ends it).
func (c *StreamConn) SetDeadline(time.Time) error { return os.ErrNoDeadline }

// SetReadDeadline reports os.ErrNoDeadline, as SetDeadline.
func (c *StreamConn) SetReadDeadline(time.Time) error { return os.ErrNoDeadline }

// SetWriteDeadline reports os.ErrNoDeadline, as SetDeadline.
func (c *StreamConn) SetWriteDeadline(time.Time) error { return os.ErrNoDeadline }

var _ io.ReadWriteCloser = (*StreamConn)(nil)
