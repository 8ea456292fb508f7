// Package sockio does the data plane's reads and writes on TCP sockets as raw,
// never-blocking system calls, waiting for readiness through the runtime's network poller
// (syscall.RawConn) exactly as the net package does. It sits at the socket: the proxy wraps
// every connection it accepts (Wrap, in its listener), the upstream pool every connection
// it dials, so everything above (TLS, the HTTP/1.1 checker, both servers, both clients,
// TCP proxying) reads and writes through it. h1server writes an answer's buffers with one
// call (Writev) and the pool peeks at idle connections (Peek) on the same socket.
//
// Why not net.Conn's own Read and Write: the net package makes each read(2) and write(2)
// through syscall.Syscall, which tells the Go scheduler a goroutine may block in the kernel
// (entersyscall/exitsyscall). A socket call with MSG_DONTWAIT never blocks, so that
// bookkeeping buys nothing here, and it costs more than its own few hundred nanoseconds:
//
//   - When every processor was idle (a sidecar between two requests), the first such call
//     wakes the runtime's monitor thread, which then polls every 20 µs until the process is
//     idle again. At 1,000 requests/s that is a futex wake-up, two context switches and a
//     few sleeps per request, on the sidecar's own core.
//   - While a call is under way the monitor may hand the processor to another thread, so
//     consecutive requests are served by threads taking turns, each hand-over a wake-up.
//
// Every call passes MSG_DONTWAIT, so a socket some other code switched to blocking mode
// still never blocks a thread that holds a processor. MSG_NOSIGNAL keeps a write to a
// closed connection an EPIPE error rather than a signal.
package sockio

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// Conn is one socket's raw reads and writes. Reads are serialised with each other, and
// writes with each other, as net.Conn's are; a read and a write may run at once.
type Conn struct {
	rc           syscall.RawConn
	laddr, raddr net.Addr

	rmu     sync.Mutex
	rp      []byte
	rn      int
	rerr    syscall.Errno
	readFn  func(uintptr) bool // readFirst
	first   func(uintptr) Next // ReadAfter's first function, until it ran
	skipped bool               // ReadAfter's first function said Skip
	holdFn  func(uintptr) bool // holdStep
	step    func() Next        // Hold's step, while Hold runs
	hfd     uintptr            // the socket, for TryRead while Hold runs

	wmu   sync.Mutex
	one   [1][]byte // Write's buffer
	wbufs [][]byte
	wn    int64
	werr  syscall.Errno
	vecFn func(uintptr) bool
	vec   vecScratch
}

// Open returns c's raw reads and writes, or nil when c is neither a *net.TCPConn nor a
// Socketed wrapper (TLS, a pipe, any other wrapper), or the platform has no raw path:
// callers then use c itself.
func Open(c net.Conn) *Conn {
	if !supported {
		return nil
	}
	if w, ok := c.(Socketed); ok { // a wrapper that opened its socket already: share it
		return w.Socket()
	}
	// Only the TCP connection itself: a wrapper that exposes its socket (SyscallConn) may
	// still transform or buffer bytes, which raw calls would skip. Wrappers opt in with
	// Socketed.
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	s := &Conn{rc: rc, laddr: tc.LocalAddr(), raddr: tc.RemoteAddr()}
	s.readFn = s.readFirst
	s.holdFn = s.holdStep
	s.vecFn = s.writeVec
	return s
}

// Socketed is a connection wrapper that reads and writes through a Conn of its own (nil:
// through net). Open returns that Conn, so that a socket has one, whichever wrapper asks.
type Socketed interface {
	Socket() *Conn
}

// Wrap returns c reading and writing through its socket's raw calls, or c itself when it
// has none (see Open). Wrap the TCP connection itself, under TLS and any wrapper that
// counts or buffers: they all read and write through it. The result keeps c's
// SyscallConn, CloseWrite and NetConn (c); other methods of c's own type (*net.TCPConn's
// ReadFrom, SetNoDelay...) are hidden, so set socket options before wrapping.
func Wrap(c net.Conn) net.Conn {
	s := Open(c)
	if s == nil {
		return c
	}
	return &wrapped{Conn: c, sock: s}
}

type wrapped struct {
	net.Conn
	sock *Conn
}

func (w *wrapped) Read(p []byte) (int, error)            { return w.sock.Read(p) }
func (w *wrapped) Write(p []byte) (int, error)           { return w.sock.Write(p) }
func (w *wrapped) Socket() *Conn                         { return w.sock }
func (w *wrapped) SyscallConn() (syscall.RawConn, error) { return w.sock.rc, nil }
func (w *wrapped) NetConn() net.Conn                     { return w.Conn }
func (w *wrapped) CloseWrite() error {
	if cw, ok := w.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Read is net.Conn's Read: it waits until bytes or the end of the stream arrive, and
// returns io.EOF at the end. Errors are *net.OpError, as from net.Conn.
func (s *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return s.ReadAfter(p, nil) // nothing first: a plain read
}

func (s *Conn) read(fd uintptr) bool {
	n, errno := recvNow(fd, s.rp)
	switch errno {
	case 0:
		s.rn = n
		return true
	case syscall.EAGAIN:
		return false // wait for readiness
	}
	s.rerr = errno
	return true
}

// recvNow is one read of fd into p that does not wait (EAGAIN: nothing came), made again
// when a signal interrupts it.
func recvNow(fd uintptr, p []byte) (int, syscall.Errno) {
	for {
		n, errno := recv(fd, p, 0)
		if errno == syscall.EINTR {
			continue
		}
		if errno == 0 {
			raceRead(fd, p[:n])
		}
		return n, errno
	}
}

// Next is what ReadAfter's first function asks for once it has run.
type Next int8

// What first may ask for: read at once (ReadNow: it sees what arrived before, and a later
// arrival ends the wait), wait for the socket to be readable before the first read
// (WaitRead), or read nothing (Skip: ReadAfter returns 0 and no error).
const (
	ReadNow Next = iota
	WaitRead
	Skip
)

// ReadAfter runs first on the socket, then reads into p as Read does, all inside one wait
// of the runtime's poller (RawConn.Read): a client that writes its request from first and
// reads the answer into p pays one wait, and no read that finds nothing in between. first
// runs once, before any read, and only if the wait can begin (not on a closed connection
// or past a deadline: ReadAfter then returns Read's error and first never ran). An empty p
// is refused (io.ErrShortBuffer) before first runs. A nil first is a plain read.
//
// The wait starts by forgetting the readiness the poller noted earlier: bytes that arrived
// before first ran wake no one. Before asking for WaitRead, first must have looked for
// them (a peek); ReadNow reads them. What arrives once first runs ends the wait.
func (s *Conn) ReadAfter(p []byte, first func(fd uintptr) Next) (int, error) {
	if len(p) == 0 {
		return 0, io.ErrShortBuffer // a read of nothing would look like the end of the stream
	}
	s.rmu.Lock()
	defer s.rmu.Unlock()
	s.rp, s.rn, s.rerr, s.first, s.skipped = p, 0, 0, first, false
	err := s.rc.Read(s.readFn)
	n, errno, skipped := s.rn, s.rerr, s.skipped
	s.rp, s.first = nil, nil
	if skipped {
		return 0, nil
	}
	if err := s.result("read", err, errno); err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, eof
	}
	return n, nil
}

// readFirst is the read callback: first (once, when set), then read.
func (s *Conn) readFirst(fd uintptr) bool {
	if f := s.first; f != nil {
		s.first = nil
		switch f(fd) {
		case Skip:
			s.skipped = true
			return true
		case WaitRead:
			return false
		}
	}
	return s.read(fd)
}

// ErrWouldBlock is TryRead's answer when nothing has arrived: Hold's step should then ask
// to wait (WaitRead).
var ErrWouldBlock = errors.New("sockio: nothing to read yet")

// Hold runs step inside one wait of the runtime's poller (RawConn.Read), for a server that
// serves a connection's requests one after another: step reads with TryRead, serves what
// it read, and returns WaitRead to be called again once the socket is readable, or Skip
// to end Hold. What arrives while step runs (the client's next request while one is
// served) ends the next wait at once: within one Hold no readiness is forgotten, so a
// step whose last read took everything the socket had may ask to wait without reading
// again first. A loop of Read calls cannot: each Read starts its wait by forgetting the
// readiness the poller noted, so it must first read to find nothing, a system call per
// request.
//
// When Hold begins, that forgetting has happened: bytes that arrived since the caller's
// last read wake no one, so step must read (TryRead) before its first WaitRead. Reads on
// the socket other than step's TryRead wait until Hold returns; writes go on as usual.
// Hold returns the poller's error (a deadline passed, the connection closed) as Read
// does, or nil when step said Skip.
func (s *Conn) Hold(step func() Next) error {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	s.step = step
	err := s.rc.Read(s.holdFn)
	s.step, s.hfd = nil, 0
	if err != nil {
		return opError("read", err, s)
	}
	return nil
}

// holdStep is Hold's callback: true (Hold returns) unless step asks to wait.
func (s *Conn) holdStep(fd uintptr) bool {
	s.hfd = fd
	return s.step() != WaitRead
}

// TryRead reads into p from inside Hold's step, without waiting: ErrWouldBlock when
// nothing has arrived, io.EOF at the end of the stream. Outside Hold it must not be called.
func (s *Conn) TryRead(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, io.ErrShortBuffer
	}
	n, errno := recvNow(s.hfd, p)
	switch {
	case errno == syscall.EAGAIN:
		return 0, ErrWouldBlock
	case errno != 0:
		return 0, s.result("read", nil, errno)
	case n == 0:
		return 0, eof
	}
	return n, nil
}

// Shutdown ends the connection both ways (shutdown(2)) without closing it: reads return
// what had arrived, then the end of the stream; writes fail; the peer is sent the end.
// Unlike Close it never waits for a read in progress, such as a Hold whose step runs, so
// it may be called while holding a lock that step takes. The reader then meets the end
// and closes the connection.
func (s *Conn) Shutdown() {
	_ = s.rc.Control(shutdown)
}

// PeerClosed reports whether what the socket holds next is the end of the stream or a
// reset: the peer has gone. It peeks without waiting and without taking the socket's
// reads (RawConn.Control), so it can look while Hold runs or a read waits. Bytes waiting
// to be read hide an end behind them.
func (s *Conn) PeerClosed() bool {
	gone := false
	_ = s.rc.Control(func(fd uintptr) {
		var b [1]byte
		n, errno := recv(fd, b[:], msgPeek)
		gone = errno == 0 && n == 0 || errno != 0 && errno != syscall.EAGAIN && errno != syscall.EINTR
	})
	return gone
}

// Write is net.Conn's Write: it returns once all of p is written or an error happened.
func (s *Conn) Write(p []byte) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.one[0] = p
	n, err := s.writev(s.one[:], "write")
	s.one[0] = nil
	return int(n), err
}

// Writev writes bufs one after another in as few system calls as the kernel takes them
// (one, unless the socket's buffer fills), and returns the bytes written. bufs' slices
// are consumed.
func (s *Conn) Writev(bufs [][]byte) (int64, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.writev(bufs, "writev")
}

// writev writes bufs under wmu; op names the call in errors.
func (s *Conn) writev(bufs [][]byte, op string) (int64, error) {
	s.wbufs, s.wn, s.werr = bufs, 0, 0
	err := s.rc.Write(s.vecFn)
	n, errno := s.wn, s.werr
	s.wbufs = nil
	s.vec.clear()
	return n, s.result(op, err, errno)
}

func (s *Conn) writeVec(fd uintptr) bool {
	for {
		for len(s.wbufs) > 0 && len(s.wbufs[0]) == 0 {
			s.wbufs = s.wbufs[1:]
		}
		if len(s.wbufs) == 0 {
			return true
		}
		raceWrite()
		n, errno := s.vec.send(fd, s.wbufs)
		switch errno {
		case 0:
			s.wn += int64(n)
			for n > 0 {
				k := min(n, len(s.wbufs[0]))
				s.wbufs[0] = s.wbufs[0][k:]
				n -= k
				if len(s.wbufs[0]) == 0 {
					s.wbufs = s.wbufs[1:]
				}
			}
			continue
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		s.werr = errno
		return true
	}
}

// result is a call's outcome as net.Conn reports it: the RawConn's error (deadline,
// closed), else the errno of the system call, else nil.
func (s *Conn) result(op string, err error, errno syscall.Errno) error {
	switch {
	case err != nil:
		return opError(op, err, s)
	case errno != 0:
		return opError(op, os.NewSyscallError(op, errno), s)
	}
	return nil
}

// opError wraps err as the net package does for a TCP connection; a RawConn's own errors
// (deadline passed, connection closed) come as "raw-read"/"raw-write" *net.OpError and are
// renamed to op.
func opError(op string, err error, s *Conn) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		oe.Op = op
		return oe
	}
	return &net.OpError{Op: op, Net: "tcp", Source: s.laddr, Addr: s.raddr, Err: err}
}

// Peek reads into b without consuming and without waiting, from inside a RawConn callback
// on the socket fd: (0, nil) is the end of the stream, EAGAIN means nothing arrived.
func Peek(fd uintptr, b []byte) (int, error) {
	n, errno := recv(fd, b, msgPeek)
	if errno != 0 {
		return 0, errno
	}
	return n, nil
}
