// Package h2server is the proxy's own HTTP/2 server (RFC 9113), in place of net/http's on
// its listeners. It sits where h1server hands a connection over:
//
//	socket (accept) → h1server (HTTP/1.1; h2c preface or TLS ALPN h2 handed over) → h2server → proxy → forward
//
// It gives the handler what net/http's HTTP/2 server gives (an *http.Request with a
// streaming, flow-controlled body and trailers, a context cancelled when the stream is
// reset or the connection ends; a ResponseWriter with 1xx, Flush and trailers, declared
// or with http.TrailerPrefix; CONNECT and extended CONNECT, RFC 8441) at a lower cost per
// stream: one goroutine per connection reads and dispatches frames and one goroutine per
// stream runs the handler (a worker that goes on to a later stream, so its grown stack is
// kept: workers.go); there is no serve loop and no channel hop per frame. Handlers
// write frames into the connection's buffer under its lock, and whoever flushes writes
// what every stream has put there: a small answer's HEADERS and DATA(END_STREAM) go out in
// one write(2), with the frames of other streams ready at the same time. Timeouts (idle,
// PING, the close after GOAWAY) are enforced by one coarse timer per server.
//
// Kept from net/http: SETTINGS (max concurrent streams, initial window, max frame size,
// max header list size, extended CONNECT), flow control both ways, PING answers and the
// keepalive PINGs to quiet clients, RST_STREAM both ways, GOAWAY on Shutdown (streams in
// flight finish) and on protocol errors, request header checks (pseudo-headers,
// connection-specific fields, a list over the limit answered 431), REFUSED_STREAM over
// the concurrent-stream limit, a panicking handler's stream reset with INTERNAL_ERROR,
// the idle timeout, keep-alives off closing a connection once idle. Not done: server
// push, priorities (frames are sent in the order they are written), Content-Type
// sniffing (as h1server: the proxy passes the upstream's headers as they are), header
// changes after WriteHeader (the header map is read when the head goes out).
package h2server

import (
	"context"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Server serves HTTP/2 connections with Handler. Fields are set before the first
// ServeConn.
type Server struct {
	Handler http.Handler
	// ConnContext derives a connection's context from one holding http.LocalAddrContextKey
	// (as http.Server.ConnContext).
	ConnContext func(ctx context.Context, c net.Conn) context.Context
	// ConnState is told when a connection opens and closes (StateNew, StateClosed).
	ConnState func(net.Conn, http.ConnState)
	// Config is the HTTP/2 configuration as net/http takes it: MaxConcurrentStreams,
	// MaxReadFrameSize, MaxReceiveBufferPerConnection, MaxReceiveBufferPerStream,
	// MaxDecoderHeaderTableSize, SendPingTimeout and PingTimeout are used (nil: defaults).
	Config *http.HTTP2Config
	// MaxHeaderBytes bounds a request's header list as http.Server.MaxHeaderBytes does
	// (0: http.DefaultMaxHeaderBytes); a longer list is answered 431.
	MaxHeaderBytes int
	// IdleTimeout closes (GOAWAY, then close) a connection without streams for this long
	// (0: never).
	IdleTimeout time.Duration
	// ErrorLog receives handler panics (nil: the log package's standard logger).
	ErrorLog *log.Logger

	mu      sync.Mutex
	conns   map[*conn]struct{}
	reaping bool
	stop    chan struct{} // closed by Shutdown or Close: the reaper ends
	closing atomic.Bool
	noKeep  atomic.Bool
	now     atomic.Int64 // Unix ns of the last tick

	cfgOnce sync.Once
	cfg     config
	workers workerPool // workers.go
}

// ErrServerClosed is what ServeConn's connections see after Shutdown (net/http's value).
var ErrServerClosed = http.ErrServerClosed

// ServeConn serves c, which has negotiated HTTP/2 (ALPN h2) or whose first bytes are the
// client preface (h2c prior knowledge; an h1server.Handoff replays them), on a new
// goroutine.
func (s *Server) ServeConn(c net.Conn) {
	s.cfgOnce.Do(s.configure)
	cn := newConn(s, c)
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		_ = c.Close()
		return
	}
	if s.conns == nil {
		s.conns = map[*conn]struct{}{}
	}
	s.conns[cn] = struct{}{}
	s.startReaper()
	cn.openedAt = s.now.Load()
	cn.lastRead.Store(cn.openedAt)
	cn.idleSince = max(cn.openedAt, 1)
	s.mu.Unlock()
	if s.ConnState != nil {
		s.ConnState(c, http.StateNew)
	}
	go cn.serve()
}

func (s *Server) forget(cn *conn) {
	s.mu.Lock()
	delete(s.conns, cn)
	s.mu.Unlock()
	if s.ConnState != nil {
		s.ConnState(cn.nc, http.StateClosed)
	}
}

// startReaper starts the coarse timer once. Called with mu held.
func (s *Server) startReaper() {
	if s.reaping {
		return
	}
	s.reaping = true
	s.stop = make(chan struct{})
	s.now.Store(time.Now().UnixNano())
	go s.reap(s.stop, s.cfg.tick)
}

// reap advances the clock and runs every connection's timers (timers.go), every tick.
func (s *Server) reap(stop chan struct{}, tick time.Duration) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			n := now.UnixNano()
			s.now.Store(n)
			s.mu.Lock()
			conns := make([]*conn, 0, len(s.conns))
			for cn := range s.conns {
				conns = append(conns, cn)
			}
			s.mu.Unlock()
			for _, cn := range conns {
				cn.timers(n)
			}
			s.trimWorkers(n)
		}
	}
}

// SetKeepAlivesEnabled with false sends GOAWAY to every connection once it has no stream
// (at once to those idle), and closes it after (as net/http's HTTP/2 server does).
func (s *Server) SetKeepAlivesEnabled(v bool) {
	s.noKeep.Store(!v)
	if v {
		return
	}
	for _, cn := range s.snapshot() {
		cn.closeIfIdle()
	}
}

func (s *Server) snapshot() []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*conn, 0, len(s.conns))
	for cn := range s.conns {
		out = append(out, cn)
	}
	return out
}

// Shutdown sends GOAWAY to every connection, lets the streams in flight finish, and waits
// for the connections to close; when ctx ends first it returns ctx's error and leaves
// them to Close.
func (s *Server) Shutdown(ctx context.Context) error {
	s.beginClose()
	for _, cn := range s.snapshot() {
		cn.shutdown()
	}
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		conns := s.snapshot()
		if len(conns) == 0 {
			return nil
		}
		// The reaper has stopped: the timers (the close after GOAWAY) run from here.
		now := time.Now().UnixNano()
		s.now.Store(now)
		for _, cn := range conns {
			cn.timers(now)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Close closes every connection at once.
func (s *Server) Close() error {
	s.beginClose()
	for _, cn := range s.snapshot() {
		_ = cn.nc.Close()
	}
	return nil
}

func (s *Server) beginClose() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Swap(true) {
		return
	}
	if s.reaping {
		close(s.stop)
		s.reaping = false
	}
	s.trimWorkers(-1) // busy workers end with their stream (parkWorker)
}

func (s *Server) logf(format string, args ...any) {
	if s.ErrorLog != nil {
		s.ErrorLog.Printf(format, args...)
		return
	}
	log.Printf(format, args...)
}
