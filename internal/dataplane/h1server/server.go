// Package h1server is the proxy's own HTTP/1.1 serving loop, in place of net/http.Server
// on its hot listeners. It sits between the accepted connection and the proxy's handler:
//
//	socket (accept) → http1.Conn (strict head and framing) → h1server → proxy → forward
//
// It serves the requests that package http1 has already checked (a refused head arrives
// as http1's stand-in request, which the proxy answers), one at a time and in order, with
// the handler's http.ResponseWriter and *http.Request as net/http gives them. What it
// changes is the cost per request: the response's head and body go out in one write(2)
// (writev for larger bodies), reads fill a buffer, nothing reads in the background, and
// idle and header timeouts are enforced by one coarse timer per server instead of a
// deadline per request. HTTP/2 (prior knowledge, or ALPN h2) is handed over (Server.HTTP2:
// the proxy gives it to h2server, or to net/http).
//
// Kept from net/http: the header read and idle timeouts, Expect: 100-continue, upgrades
// and CONNECT (Hijack), pipelining (answers in order), request and response trailers,
// HTTP/1.0 (close unless keep-alive), chunked bodies both ways, Connection: close, the
// rest of an unread body drained (up to 256 KiB) or the connection closed, panics with
// http.ErrAbortHandler resetting the connection, graceful Shutdown.
package h1server

import (
	"context"
	"errors"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Server serves HTTP/1.1 connections with Handler. Fields are set before Serve.
type Server struct {
	Handler http.Handler
	// ConnContext derives a connection's context (as http.Server.ConnContext).
	ConnContext func(ctx context.Context, c net.Conn) context.Context
	// ConnState is told when a connection opens, closes or is taken over (hijacked or
	// handed to HTTP2). Only StateNew, StateClosed and StateHijacked are reported.
	ConnState func(net.Conn, http.ConnState)
	// HTTP2 takes over a connection that speaks HTTP/2: ALPN h2, or the client preface
	// (the conn then replays the bytes already read, and carries its context: see Handoff).
	// nil: such connections are closed.
	HTTP2 func(c net.Conn)
	// IdleTimeout closes a connection that waits this long for its next request (0: never).
	IdleTimeout time.Duration
	// ReadHeaderTimeout bounds the time from a request's first byte to the end of its head
	// (0: none).
	ReadHeaderTimeout time.Duration
	// MaxHeaderBytes bounds the bytes of one request head read (0: 1 MiB).
	MaxHeaderBytes int
	// ErrorLog receives handler panics (nil: the log package's standard logger).
	ErrorLog *log.Logger

	mu        sync.Mutex
	conns     map[*conn]struct{}
	listeners map[net.Listener]struct{}
	reaping   bool
	stop      chan struct{} // closed by Shutdown or Close: the reaper ends
	closing   atomic.Bool   // Shutdown or Close was called
	noKeep    atomic.Bool   // SetKeepAlivesEnabled(false)
	wg        sync.WaitGroup
	clock     clock
}

// ErrServerClosed is returned by Serve after Shutdown or Close (net/http's value, so
// callers check one error).
var ErrServerClosed = http.ErrServerClosed

// tick is the resolution of the timeouts and of the Date header.
const tick = 250 * time.Millisecond

// Serve accepts connections from ln and serves each on its own goroutine until ln fails
// or the server closes.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		return ErrServerClosed
	}
	if s.listeners == nil {
		s.listeners = map[net.Listener]struct{}{}
	}
	s.listeners[ln] = struct{}{}
	s.startReaper()
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			return err
		}
		s.ServeConn(c)
	}
}

// ServeConn serves one connection on a new goroutine.
func (s *Server) ServeConn(c net.Conn) {
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
	s.wg.Add(1)
	s.mu.Unlock()
	if s.ConnState != nil {
		s.ConnState(c, http.StateNew)
	}
	go cn.serve()
}

// forget removes a finished connection.
func (s *Server) forget(cn *conn) {
	s.mu.Lock()
	delete(s.conns, cn)
	s.mu.Unlock()
	s.wg.Done()
}

// startReaper starts the coarse timer once. Called with mu held.
func (s *Server) startReaper() {
	if s.reaping {
		return
	}
	s.reaping = true
	s.stop = make(chan struct{})
	s.clock.set(time.Now())
	go s.reap(s.stop)
}

// reap advances the clock and closes connections past their deadline, every tick.
func (s *Server) reap(stop chan struct{}) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			s.clock.set(now)
			n := now.UnixNano()
			s.mu.Lock()
			for cn := range s.conns {
				if d := cn.deadline.Load(); d != 0 && n > d {
					cn.expire()
				}
				cn.maybeWatch(n) // watch.go
			}
			s.mu.Unlock()
		}
	}
}

// SetKeepAlivesEnabled with false closes idle connections and makes every later answer
// close its connection (as net/http's).
func (s *Server) SetKeepAlivesEnabled(v bool) {
	s.noKeep.Store(!v)
	if !v {
		s.closeIdle()
	}
}

// closeIdle closes the connections that wait for a request with nothing of it read.
func (s *Server) closeIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for cn := range s.conns {
		cn.closeIfIdle()
	}
	return len(s.conns) == 0
}

// Shutdown stops accepting, closes idle connections, and waits for the others to finish
// their request (they close after its answer); when ctx ends first it returns ctx's error
// and leaves them to Close.
func (s *Server) Shutdown(ctx context.Context) error {
	s.beginClose()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		if s.closeIdle() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Close stops accepting and closes every connection at once.
func (s *Server) Close() error {
	s.beginClose()
	s.mu.Lock()
	for cn := range s.conns {
		_ = cn.rwc.Close()
	}
	s.mu.Unlock()
	return nil
}

func (s *Server) beginClose() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Swap(true) {
		return
	}
	for ln := range s.listeners {
		_ = ln.Close()
	}
	if s.reaping {
		close(s.stop)
	}
}

// clock is the time of the last tick, and the Date header for it.
type clock struct {
	date atomic.Pointer[[]byte] // "Date: ...\r\n"
	sec  atomic.Int64
	nano atomic.Int64
}

// deadline is the time d from the last tick in Unix nanoseconds (0: d is 0, no deadline).
func (c *clock) deadline(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return c.nano.Load() + int64(d)
}

func (c *clock) set(now time.Time) {
	c.nano.Store(now.UnixNano())
	if sec := now.Unix(); c.sec.Swap(sec) != sec || c.date.Load() == nil {
		b := make([]byte, 0, 40)
		b = append(b, "Date: "...)
		b = now.UTC().AppendFormat(b, http.TimeFormat)
		b = append(b, "\r\n"...)
		c.date.Store(&b)
	}
}

func (c *clock) dateLine() []byte {
	if p := c.date.Load(); p != nil {
		return *p
	}
	c.set(time.Now())
	return *c.date.Load()
}
