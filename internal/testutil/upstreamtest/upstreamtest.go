// Package upstreamtest has upstreams that misbehave on purpose, for tests of the proxy's
// upstream side (pool, forward): an HTTP/1.1 server that closes idle keep-alive connections
// the way real servers do, with the window in which a request arriving is reset unread, and
// a TCP relay that adds link delay. It is for tests only; everything it starts stops at
// test cleanup.
package upstreamtest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// IDs counts the request IDs an upstream processed, so a test can see a request processed
// twice, or a failed one processed at all.
type IDs struct {
	mu sync.Mutex
	m  map[string]int
}

// Add counts one processing of id.
func (s *IDs) Add(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]int{}
	}
	s.m[id]++
}

// Count is how many times id was processed.
func (s *IDs) Count(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[id]
}

// Duplicates lists the IDs processed more than once ("id ×n").
func (s *IDs) Duplicates() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var d []string
	for id, n := range s.m {
		if n > 1 {
			d = append(d, fmt.Sprintf("%s ×%d", id, n))
		}
	}
	return d
}

// IdleCloser is an HTTP/1.1 upstream that closes a connection once it has been idle for
// Idle since its last response, like Node.js, gunicorn or Go's IdleTimeout. The close comes
// Lag after the idle timer fires, as in a process whose event loop is busy: a request that
// arrives in between is dropped unread and the kernel resets the connection. That is the
// keep-alive race's window. It processes a request only once it has read all of it, counts
// its ID header in IDs, and answers 200 "ok".
type IdleCloser struct {
	// Idle is read at the start of each wait, so a test can change it at run time.
	Idle atomic.Int64 // time.Duration
	Lag  time.Duration
	// Announce sends "Keep-Alive: timeout=N" (N = Idle in seconds, fractional).
	Announce bool
	// IDHeader names the request header counted in IDs (default X-Request-Id).
	IDHeader string
	IDs      IDs
	// Conns counts the connections accepted.
	Conns atomic.Int64
}

// Start serves on ip (a free port) and returns the address.
func (u *IdleCloser) Start(tb testing.TB, ip string) string {
	tb.Helper()
	idHeader := u.IDHeader
	if idHeader == "" {
		idHeader = "X-Request-Id"
	}
	return Serve(tb, ip, func(c net.Conn, _ int) {
		u.Conns.Add(1)
		br := bufio.NewReader(c)
		for {
			idle := time.Duration(u.Idle.Load())
			_ = c.SetReadDeadline(time.Now().Add(idle))
			req, err := http.ReadRequest(br)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					time.Sleep(u.Lag) // the close lags: a request arriving now is reset
				}
				return
			}
			_ = c.SetReadDeadline(time.Time{})
			if _, err := io.Copy(io.Discard, req.Body); err != nil {
				return
			}
			u.IDs.Add(req.Header.Get(idHeader))
			ka := ""
			if u.Announce {
				ka = fmt.Sprintf("Keep-Alive: timeout=%g\r\n", idle.Seconds())
			}
			if _, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\n%sContent-Length: 2\r\n\r\nok", ka); err != nil {
				return
			}
		}
	})
}

// DelayRelay forwards TCP connections from ip (a free port, returned) to target with delay
// added in each direction: bytes, the end of a stream (FIN) and resets all arrive delay
// late, as over a link with that one-way latency.
func DelayRelay(tb testing.TB, ip, target string, delay time.Duration) string {
	tb.Helper()
	return Serve(tb, ip, func(c net.Conn, _ int) {
		up, err := net.Dial("tcp", target)
		if err != nil {
			return
		}
		defer up.Close()
		var both sync.WaitGroup
		both.Add(2)
		go func() { defer both.Done(); delayPipe(up.(*net.TCPConn), c.(*net.TCPConn), delay) }()
		go func() { defer both.Done(); delayPipe(c.(*net.TCPConn), up.(*net.TCPConn), delay) }()
		both.Wait()
	})
}

// delayPipe copies src to dst, each chunk delay late; src's end becomes dst's half-close
// and a failure of src a reset of dst, delay late too.
func delayPipe(dst, src *net.TCPConn, delay time.Duration) {
	type item struct {
		at  time.Time
		b   []byte
		err error
	}
	ch := make(chan item, 256)
	done := make(chan struct{})
	go func() {
		defer close(done)
		broken := false
		for it := range ch {
			time.Sleep(time.Until(it.at))
			switch {
			case broken:
			case it.err == nil:
				if _, err := dst.Write(it.b); err != nil {
					broken = true
				}
			case errors.Is(it.err, io.EOF):
				_ = dst.CloseWrite()
			default:
				_ = dst.SetLinger(0)
				_ = dst.Close()
			}
		}
	}()
	for {
		buf := make([]byte, 32<<10)
		n, err := src.Read(buf)
		if n > 0 {
			ch <- item{at: time.Now().Add(delay), b: buf[:n]}
		}
		if err != nil {
			ch <- item{at: time.Now().Add(delay), err: err}
			close(ch)
			<-done
			return
		}
	}
}

// Answers serves on ip (a free port, returned) with Serve, reading requests with net/http
// and writing for each the bytes answer returns for it, as they are: a test's exact
// heads, which net/http's server would not write.
func Answers(t testing.TB, ip string, answer func(req *http.Request) string) string {
	t.Helper()
	return Serve(t, ip, func(c net.Conn, _ int) {
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if _, err := io.WriteString(c, answer(req)); err != nil {
				return
			}
		}
	})
}

// Serve accepts connections on ip (a free port, returned) until test cleanup and runs
// handle for each on its own goroutine (n counts connections from 0, in accept order),
// closing the connection after. Cleanup closes the listener and the connections still
// open (a handler blocked reading returns), then waits for every handler.
func Serve(t testing.TB, ip string, handle func(c net.Conn, n int)) string {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 0; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c, n)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}
