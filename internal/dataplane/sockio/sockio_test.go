package sockio

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// pair is a connected loopback TCP pair: a raw one (Open) and the peer as a plain net.Conn.
func pair(t testing.TB) (*net.TCPConn, *Conn, net.Conn) {
	t.Helper()
	if !supported {
		t.Skip("no raw socket path on " + runtime.GOOS)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { _ = c.Close(); _ = r.c.Close() })
	s := Open(c)
	if s == nil {
		t.Fatal("Open returned nil for a TCP connection")
	}
	return c.(*net.TCPConn), s, r.c
}

func random(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// Both directions at once, each far larger than the socket buffers: every read and write
// waits for readiness many times, and the bytes arrive whole and in order.
func TestReadWriteBothWays(t *testing.T) {
	_, s, peer := pair(t)
	out, in := random(t, 4<<20), random(t, 4<<20)
	peerGot := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(peer, int64(len(out))))
		peerGot <- b
	}()
	peerErr := make(chan error, 1)
	go func() {
		_, err := peer.Write(in)
		peerErr <- err
	}()
	writeErr := make(chan error, 1)
	go func() {
		// uneven pieces, so that writes and the peer's reads do not line up
		rest := out
		for len(rest) > 0 {
			k := min(len(rest), 100_003)
			n, err := s.Write(rest[:k])
			if err != nil || n != k {
				writeErr <- errors.Join(err, errors.New("short write"))
				return
			}
			rest = rest[k:]
		}
		writeErr <- nil
	}()
	got := make([]byte, 0, len(in))
	buf := make([]byte, 7000)
	for len(got) < len(in) {
		n, err := s.Read(buf)
		if err != nil {
			t.Fatalf("read after %d bytes: %v", len(got), err)
		}
		got = append(got, buf[:n]...)
	}
	if err := <-writeErr; err != nil {
		t.Fatal(err)
	}
	if err := <-peerErr; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, in) {
		t.Error("the bytes read differ from what the peer wrote")
	}
	if !bytes.Equal(<-peerGot, out) {
		t.Error("the peer read other bytes than were written")
	}
}

// Writev sends more buffers than one sendmsg takes, empty ones among them, in order, and
// counts every byte.
func TestWritevManyBuffers(t *testing.T) {
	_, s, peer := pair(t)
	var bufs [][]byte
	var want []byte
	for i := range 300 {
		b := random(t, (i*7919)%20000)
		if i%10 == 0 {
			b = nil
		}
		bufs = append(bufs, b)
		want = append(want, b...)
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(peer, int64(len(want))))
		got <- b
	}()
	n, err := s.Writev(bufs)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(want)) {
		t.Errorf("Writev reported %d bytes, want %d", n, len(want))
	}
	if !bytes.Equal(<-got, want) {
		t.Error("the peer read other bytes than were written")
	}
}

// The end of the stream is io.EOF itself, as net.Conn returns it.
func TestReadEOF(t *testing.T) {
	_, s, peer := pair(t)
	if _, err := peer.Write([]byte("last")); err != nil {
		t.Fatal(err)
	}
	_ = peer.Close()
	b, err := io.ReadAll(readerOf{s})
	if err != nil || string(b) != "last" {
		t.Fatalf("ReadAll = %q, %v", b, err)
	}
	if n, err := s.Read(make([]byte, 10)); n != 0 || err != io.EOF { //nolint:errorlint // net.Conn returns io.EOF itself
		t.Errorf("Read at the end = %d, %v; want 0, io.EOF", n, err)
	}
}

type readerOf struct{ s *Conn }

func (r readerOf) Read(p []byte) (int, error) { return r.s.Read(p) }

// A reset connection fails reads and writes with the errno inside a *net.OpError, and a
// write never raises SIGPIPE (the test process would die).
func TestResetAndClosedPeer(t *testing.T) {
	_, s, peer := pair(t)
	_ = peer.(*net.TCPConn).SetLinger(0)
	_ = peer.Close() // RST
	_, err := s.Read(make([]byte, 10))
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "read" || !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("Read after a reset = %v; want a read *net.OpError with ECONNRESET", err)
	}
	var werr error
	for range 10 {
		if _, werr = s.Write([]byte("x")); werr != nil {
			break
		}
	}
	if !errors.Is(werr, syscall.EPIPE) && !errors.Is(werr, syscall.ECONNRESET) {
		t.Errorf("Write to a reset connection = %v; want EPIPE or ECONNRESET", werr)
	}
	if !errors.As(werr, &oe) || oe.Op != "write" {
		t.Errorf("Write error %v is not a write *net.OpError", werr)
	}
}

// Deadlines and Close interrupt a waiting read with the errors net.Conn gives.
func TestDeadlineAndClose(t *testing.T) {
	c, s, _ := pair(t)
	_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	start := time.Now()
	_, err := s.Read(make([]byte, 10))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past its deadline = %v; want a timeout", err)
	}
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Errorf("Read returned after %v, before its deadline", d)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "read" {
		t.Errorf("timeout %v is not a read *net.OpError", err)
	}
	_ = c.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() {
		_, err := s.Read(make([]byte, 10))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	_ = c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Read interrupted by Close = %v; want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not interrupt the read")
	}
	if _, err := s.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close = %v; want net.ErrClosed", err)
	}
}

// Peek sees bytes without consuming them, nothing as EAGAIN, and the end as (0, nil).
func TestPeek(t *testing.T) {
	c, s, peer := pair(t)
	rc, _ := c.SyscallConn()
	peekNow := func() (n int, b []byte, err error) {
		b = make([]byte, 8)
		_ = rc.Control(func(fd uintptr) { n, err = Peek(fd, b) })
		return n, b[:n], err
	}
	if n, _, err := peekNow(); n != 0 || !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("Peek on a quiet socket = %d, %v; want EAGAIN", n, err)
	}
	if _, err := peer.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, b, err := peekNow()
		if err == nil && n == 5 {
			if string(b) != "hello" {
				t.Fatalf("Peek = %q", b)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Peek never saw the bytes: %d, %v", n, err)
		}
		time.Sleep(time.Millisecond)
	}
	got := make([]byte, 5)
	if _, err := io.ReadFull(readerOf{s}, got); err != nil || string(got) != "hello" {
		t.Fatalf("Read after Peek = %q, %v", got, err)
	}
	_ = peer.Close()
	for {
		n, _, err := peekNow()
		if err == nil && n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Peek never saw the end of the stream: %d, %v", n, err)
		}
		time.Sleep(time.Millisecond)
	}
}

// A socket switched to blocking mode still never blocks a raw read in the kernel: the read
// waits in the poller, where its deadline ends it.
func TestBlockingModeSocketStillWaitsInThePoller(t *testing.T) {
	c, s, peer := pair(t)
	blockingMode(t, c)
	_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	done := make(chan error, 1)
	go func() {
		_, err := s.Read(make([]byte, 10))
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read = %v; want its deadline", err)
		}
	case <-time.After(5 * time.Second):
		_, _ = peer.Write([]byte("unblock")) // lets the stuck read return before cleanup
		t.Fatalf("the read blocked in the kernel past its deadline (then returned %v)", <-done)
	}
}

// blockingMode switches c's socket to blocking mode behind the net package's back.
func blockingMode(t *testing.T, c *net.TCPConn) {
	t.Helper()
	rc, _ := c.SyscallConn()
	var serr error
	_ = rc.Control(func(fd uintptr) { serr = unix.SetNonblock(int(fd), false) })
	if serr != nil {
		t.Fatal(serr)
	}
}

// Only plaintext TCP sockets get a raw path.
func TestOpenOnlyTCP(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if Open(a) != nil {
		t.Error("Open(net.Pipe) is not nil")
	}
	c, _, _ := pair(t)
	if Open(exposing{c}) != nil {
		t.Error("Open took the socket under a wrapper that did not opt in (Socketed)")
	}
	if Open(tls.Client(c, &tls.Config{InsecureSkipVerify: true})) != nil {
		t.Error("Open(*tls.Conn) is not nil")
	}
	dir := t.TempDir()
	ln, err := net.Listen("unix", filepath.Join(dir, "s"))
	if err != nil {
		t.Skip(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			_ = c.Close()
		}
	}()
	u, err := net.Dial("unix", filepath.Join(dir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if Open(u) != nil {
		t.Error("Open(unix socket) is not nil")
	}
}

// exposing is a wrapper that exposes its socket but may transform what it reads.
type exposing struct{ *net.TCPConn }

func (e exposing) Read(p []byte) (int, error) { return e.TCPConn.Read(p) }

// BenchmarkPingPong: 1 KiB each way between two goroutines over loopback, through
// net.Conn and through Conn.
func BenchmarkPingPong(b *testing.B) {
	for _, raw := range []bool{false, true} {
		name := "net"
		if raw {
			name = "sockio"
		}
		b.Run(name, func(b *testing.B) {
			c, s, peer := pair(b)
			var rw io.ReadWriter = c
			if raw {
				rw = s
			}
			go func() {
				buf := make([]byte, 1024)
				for {
					if _, err := io.ReadFull(peer, buf); err != nil {
						return
					}
					if _, err := peer.Write(buf); err != nil {
						return
					}
				}
			}()
			msg := make([]byte, 1024)
			b.SetBytes(2048)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := rw.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(rw, msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// ReadAfter runs its first function once, on the socket, then reads as Read does: a
// request written from it is answered into the same call; WaitRead waits for the answer
// that comes after; ReadNow finds what had arrived before; Skip reads nothing; on a closed
// connection, or into an empty buffer, first never runs and the error says why.
func TestReadAfter(t *testing.T) {
	c, s, peer := pair(t)
	go func() { // an echo of every request, a moment later
		buf := make([]byte, 64)
		for {
			n, err := peer.Read(buf)
			if err != nil {
				return
			}
			time.Sleep(5 * time.Millisecond)
			if _, err := peer.Write(buf[:n]); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 64)
	for _, next := range []Next{WaitRead, ReadNow} {
		runs := 0
		n, err := s.ReadAfter(buf, func(fd uintptr) Next {
			runs++
			if _, err := s.Write([]byte("ping")); err != nil {
				t.Error(err)
			}
			return next
		})
		if err != nil || string(buf[:n]) != "ping" || runs != 1 {
			t.Fatalf("next %d: read %q, %v after %d runs of first; want the echo after one", next, buf[:n], err, runs)
		}
	}

	// What arrived before the call: ReadNow reads it at once.
	if _, err := s.Write([]byte("early")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the echo is in the socket
	n, err := s.ReadAfter(buf, func(uintptr) Next { return ReadNow })
	if err != nil || string(buf[:n]) != "early" {
		t.Fatalf("ReadNow with bytes waiting: %q, %v", buf[:n], err)
	}

	if n, err := s.ReadAfter(buf, func(uintptr) Next { return Skip }); n != 0 || err != nil {
		t.Fatalf("Skip: %d, %v; want 0, nil", n, err)
	}

	ran := false
	if _, err := s.ReadAfter(nil, func(uintptr) Next { ran = true; return Skip }); !errors.Is(err, io.ErrShortBuffer) || ran {
		t.Fatalf("into an empty buffer: %v, first ran %v; want io.ErrShortBuffer without running it", err, ran)
	}

	_ = c.Close()
	if _, err := s.ReadAfter(buf, func(uintptr) Next { ran = true; return ReadNow }); !errors.Is(err, net.ErrClosed) || ran {
		t.Fatalf("on a closed connection: %v, first ran %v; want net.ErrClosed without running it", err, ran)
	}
}

// Hold: bytes that arrive while step runs, after its last read took everything, end the
// next wait at once although step asks to wait without reading again (a wait that began
// by forgetting what the poller noted would never end); TryRead finds nothing
// (ErrWouldBlock), then the end of the stream; PeerClosed sees that end while Hold waits,
// without taking the reads; closing the connection ends a waiting Hold.
func TestHold(t *testing.T) {
	c, s, peer := pair(t)
	if _, err := peer.Write([]byte("one")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	stuck := time.AfterFunc(5*time.Second, func() { _ = c.Close() })
	buf := make([]byte, 64)
	var got []string
	calls := 0
	err := s.Hold(func() Next {
		calls++
		n, err := s.TryRead(buf)
		got = append(got, string(buf[:n]))
		if err != nil {
			t.Errorf("call %d: TryRead: %v", calls, err)
			return Skip
		}
		if calls == 2 {
			if n, err := s.TryRead(buf); !errors.Is(err, ErrWouldBlock) || n != 0 {
				t.Errorf("TryRead on an empty socket: %d, %v; want ErrWouldBlock", n, err)
			}
			return Skip
		}
		// Serving "one": the peer's next bytes come meanwhile, and the poller notes them
		// while the goroutine sleeps.
		if _, err := peer.Write([]byte("two")); err != nil {
			t.Error(err)
		}
		time.Sleep(50 * time.Millisecond)
		return WaitRead
	})
	if !stuck.Stop() {
		t.Fatalf("Hold never woke for bytes that came while step ran (read %q, %v)", got, err)
	}
	if err != nil || calls != 2 || len(got) != 2 || got[0] != "one" || got[1] != "two" {
		t.Fatalf("Hold: %v after %d calls reading %q; want nil after 2 reading one, two", err, calls, got)
	}

	// PeerClosed while Hold waits, then the end of the stream for step.
	done := make(chan error, 1)
	var last error
	go func() {
		done <- s.Hold(func() Next {
			if _, last = s.TryRead(buf); errors.Is(last, ErrWouldBlock) {
				return WaitRead
			}
			return Skip
		})
	}()
	time.Sleep(20 * time.Millisecond)
	if s.PeerClosed() {
		t.Fatal("PeerClosed on an open connection")
	}
	_ = peer.Close()
	deadline := time.Now().Add(5 * time.Second)
	for !s.PeerClosed() {
		if time.Now().After(deadline) {
			t.Fatal("PeerClosed never saw the peer's close")
		}
		time.Sleep(time.Millisecond)
	}
	if err := <-done; err != nil || !errors.Is(last, io.EOF) {
		t.Fatalf("Hold after the peer closed: %v, step read %v; want nil and io.EOF", err, last)
	}

	// Closing the connection ends a waiting Hold.
	c2, s2, _ := pair(t)
	go func() {
		done <- s2.Hold(func() Next {
			if _, err := s2.TryRead(buf); errors.Is(err, ErrWouldBlock) {
				return WaitRead
			}
			return Skip
		})
	}()
	time.Sleep(20 * time.Millisecond)
	_ = c2.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Hold on a connection closed while it waits: %v, want net.ErrClosed", err)
	}
}
