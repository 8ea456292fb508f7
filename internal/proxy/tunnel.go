package proxy

import (
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// prefixConn is a hijacked connection whose first bytes were already read into the
// server's buffer.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// CloseWrite passes a half-close on to the TCP connection.
func (c *prefixConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// streamConn is an HTTP/2 CONNECT stream seen as a connection: reads come from the request
// body, writes go to the response (flushed at once); CloseWrite ends the response stream.
type streamConn struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	body io.ReadCloser
	r    *http.Request

	mu     sync.Mutex
	closed bool
	done   chan struct{} // closed by Close: the handler may return
}

func newStreamConn(w http.ResponseWriter, r *http.Request) *streamConn {
	return &streamConn{w: w, rc: http.NewResponseController(w), body: r.Body, r: r, done: make(chan struct{})}
}

func (c *streamConn) Read(b []byte) (int, error) { return c.body.Read(b) }

func (c *streamConn) Write(b []byte) (int, error) {
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

// CloseWrite: the handler returning ends the stream; until then nothing more is written.
func (c *streamConn) CloseWrite() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

func (c *streamConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
	}
	return c.body.Close()
}

func (c *streamConn) LocalAddr() net.Addr {
	if a, ok := c.r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		return a
	}
	return &net.TCPAddr{}
}

func (c *streamConn) RemoteAddr() net.Addr {
	if a, err := net.ResolveTCPAddr("tcp", c.r.RemoteAddr); err == nil {
		return a
	}
	return &net.TCPAddr{}
}

func (c *streamConn) SetDeadline(time.Time) error      { return os.ErrNoDeadline }
func (c *streamConn) SetReadDeadline(time.Time) error  { return os.ErrNoDeadline }
func (c *streamConn) SetWriteDeadline(time.Time) error { return os.ErrNoDeadline }

// oneConnListener hands one connection to an http.Server, then blocks until closed.
type oneConnListener struct {
	mu   sync.Mutex
	c    net.Conn
	done chan struct{}
	once sync.Once
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	c := l.c
	l.c = nil
	l.mu.Unlock()
	if c != nil {
		return c, nil
	}
	<-l.done
	return nil, net.ErrClosed
}

func (l *oneConnListener) closeOnce() { l.once.Do(func() { close(l.done) }) }

func (l *oneConnListener) Close() error {
	l.closeOnce()
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return &net.TCPAddr{} }
