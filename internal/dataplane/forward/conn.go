package forward

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/cluster"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// ConnectionCounter counts one opaque TCP connection's traffic for Istio's TCP metrics
// (stats.TCPConn implements it). Its methods must be safe for concurrent use.
type ConnectionCounter interface {
	AddSent(n int64)     // bytes sent to the downstream
	AddReceived(n int64) // bytes received from the downstream
	Close()              // the connection closed (once)
}

// openConnection counts one opaque TCP connection opened (istio_tcp_connections_opened_total)
// with the labels info has now, and returns its counters; a no-op counter when the
// Forwarder has no ConnectionMetrics.
func (f *Forwarder) openConnection(info *streaminfo.Info) ConnectionCounter {
	if f == nil || f.o.ConnectionMetrics == nil {
		return nopCounter{}
	}
	return f.o.ConnectionMetrics(info)
}

type nopCounter struct{}

func (nopCounter) AddSent(int64)     {}
func (nopCounter) AddReceived(int64) {}
func (nopCounter) Close()            {}

// countConn wraps a downstream connection so that the bytes read from it (received) and
// written to it (sent) are counted as they move. CloseWrite is passed on (pipe's
// half-close).
func countConn(c net.Conn, cc ConnectionCounter) net.Conn {
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

// pipeOnHost pipes down and up while the stream is tracked on its host h: when h leaves
// its cluster and the drain grace period for kind passes, both connections are closed and
// gone says why (nil when the pipe ended otherwise).
func pipeOnHost(h *cluster.Host, kind cluster.StreamKind, down, up net.Conn, idle time.Duration) (res pipeResult, gone *string) {
	var why atomic.Pointer[string]
	var s cluster.Stream
	h.Track(&s, kind, cluster.EndFunc(func(reason string) {
		why.Store(&reason)
		_ = up.Close()
		_ = down.Close()
	}))
	defer h.Untrack(&s)
	res = pipe(down, up, idle)
	return res, why.Load()
}

// pipeResult is what a pipe moved and why it ended.
type pipeResult struct {
	Received int64 // bytes from the downstream to the upstream
	Sent     int64 // bytes from the upstream to the downstream
	// IdleTimeout: the pipe was closed because no byte moved for the idle timeout.
	IdleTimeout bool
	// UpstreamErr is the error that ended the upstream side (nil on a clean close).
	UpstreamErr error
}

// pipe copies bytes both ways between a downstream and an upstream connection until both
// directions are done, passing half-closes on (a FIN from one side becomes CloseWrite on
// the other). When idle > 0, both connections are closed once no byte has moved either
// way for idle (Envoy tcp_proxy idle_timeout). Used by tcp_proxy and upgrades.
func pipe(down, up net.Conn, idle time.Duration) pipeResult {
	var res pipeResult
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	var timedOut atomic.Bool
	var timer *time.Timer
	if idle > 0 {
		// Reset re-arms the same function: no recursion needed.
		check := func() {
			quiet := time.Since(time.Unix(0, last.Load()))
			if quiet >= idle {
				timedOut.Store(true)
				_ = down.Close()
				_ = up.Close()
				return
			}
			timer.Reset(idle - quiet)
		}
		timer = time.AfterFunc(idle, check)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	cp := func(dst, src net.Conn, n *int64, rerr *error) {
		defer wg.Done()
		bp := copyBufs.Get(-1)
		defer copyBufs.Put(bp)
		buf := (*bp)[:cap(*bp)]
		for {
			k, err := src.Read(buf)
			if k > 0 {
				last.Store(time.Now().UnixNano())
				w, werr := dst.Write(buf[:k])
				*n += int64(w)
				if werr != nil {
					_ = src.Close()
					_ = dst.Close()
					return
				}
			}
			if err != nil {
				if !errors.Is(err, io.EOF) && rerr != nil && !errors.Is(err, net.ErrClosed) {
					*rerr = err
				}
				if cw, ok := dst.(interface{ CloseWrite() error }); ok && errors.Is(err, io.EOF) {
					_ = cw.CloseWrite()
				} else {
					_ = dst.Close()
					_ = src.Close()
				}
				return
			}
		}
	}
	go cp(up, down, &res.Received, nil)
	cp(down, up, &res.Sent, &res.UpstreamErr)
	wg.Wait()
	if timer != nil {
		timer.Stop()
	}
	res.IdleTimeout = timedOut.Load()
	return res
}

// observeConnection hands the record of one finished opaque TCP connection to the
// connection observers (not the request metrics), then to the access log with the
// access logs of its chain tp (nil when it had none).
func (f *Forwarder) observeConnection(info *streaminfo.Info, tp *resource.TCPProxy) {
	for _, o := range f.o.ConnectionObservers {
		o(info)
	}
	if f.o.ConnectionAccessLog != nil {
		var logs []resource.AccessLog
		if tp != nil {
			logs = tp.AccessLogs
		}
		f.o.ConnectionAccessLog(info, logs)
	}
}
