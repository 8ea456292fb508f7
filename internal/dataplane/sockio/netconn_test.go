package sockio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
)

// What net.Conn promises and its users rely on, through the raw path: net/http's abort of
// a background read, write deadlines on a peer that stops reading (the pool counts the
// bytes a failed write got out), Close under a waiting write, concurrent reads.

// wait returns what ch delivers, failing the test if nothing comes: a call stuck in the
// kernel, or in a wait nothing interrupts.
func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("%s never returned", what)
		panic("unreachable")
	}
}

// A deadline in the past interrupts a waiting read with a timeout (net/http aborts its
// background read so), and once cleared the connection reads on.
func TestPastDeadlineAbortsWaitingRead(t *testing.T) {
	c, s, peer := pair(t)
	done := make(chan error, 1)
	go func() {
		_, err := s.Read(make([]byte, 1))
		done <- err
	}()
	_ = c.SetReadDeadline(time.Unix(1, 0))
	err := wait(t, done, "the aborted read")
	var ne net.Error
	var oe *net.OpError
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &oe) || oe.Op != "read" {
		t.Fatalf("aborted Read = %v; want a read *net.OpError that is a timeout", err)
	}
	_ = c.SetReadDeadline(time.Time{})
	if _, err := peer.Write([]byte("y")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if n, err := s.Read(b); n != 1 || err != nil || b[0] != 'y' {
		t.Fatalf("Read after the abort = %d %q, %v", n, b, err)
	}
}

// A write to a peer that reads nothing ends at its deadline with the bytes that got out
// counted: exactly those reach the peer.
func TestWriteDeadlineCountsWhatGotOut(t *testing.T) {
	c, s, peer := pair(t)
	big := random(t, 64<<20) // more than any socket buffers on loopback
	_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	n, err := s.Write(big)
	var oe *net.OpError
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &oe) || oe.Op != "write" {
		t.Fatalf("Write past its deadline = %d, %v; want a write *net.OpError with a timeout", n, err)
	}
	if n <= 0 || n >= len(big) {
		t.Fatalf("Write reported %d of %d bytes written", n, len(big))
	}
	_ = c.Close()
	got, err := io.ReadAll(peer)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n || !bytes.Equal(got, big[:n]) {
		t.Errorf("the peer got %d bytes, Write reported %d", len(got), n)
	}
}

// Close interrupts a write waiting for room with net.ErrClosed.
func TestCloseInterruptsWaitingWrite(t *testing.T) {
	c, s, _ := pair(t)
	done := make(chan error, 1)
	go func() {
		_, err := s.Write(make([]byte, 64<<20))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond) // usually waiting by now; either way Close ends it
	_ = c.Close()
	if err := wait(t, done, "the write under Close"); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write interrupted by Close = %v; want net.ErrClosed", err)
	}
}

// Two goroutines reading at once (net.Conn allows it) share the stream: every byte is
// read once, into the buffer of the read that got it.
func TestConcurrentReads(t *testing.T) {
	_, s, peer := pair(t)
	sent := random(t, 8<<20)
	go func() {
		_, _ = peer.Write(sent)
		_ = peer.Close()
	}()
	var mu sync.Mutex
	var hist [256]int
	var total int
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			buf := make([]byte, 3000)
			for {
				n, err := s.Read(buf)
				mu.Lock()
				for _, b := range buf[:n] {
					hist[b]++
				}
				total += n
				mu.Unlock()
				if err != nil {
					if err != io.EOF { //nolint:errorlint // net.Conn returns io.EOF itself
						t.Errorf("Read = %v", err)
					}
					return
				}
			}
		})
	}
	wg.Wait()
	var want [256]int
	for _, b := range sent {
		want[b]++
	}
	if total != len(sent) || hist != want {
		t.Errorf("the readers got %d bytes (of %d), not the bytes sent", total, len(sent))
	}
}

// A socket switched to blocking mode never blocks a raw write in the kernel either: the
// write waits in the poller, where its deadline ends it.
func TestBlockingModeSocketWriteStillWaitsInThePoller(t *testing.T) {
	c, s, peer := pair(t)
	blockingMode(t, c)
	big := make([]byte, 64<<20)
	runtime.GC() // a collection waiting for the stuck write would hang the test instead of failing it
	_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	done := make(chan error, 1)
	go func() {
		_, err := s.Write(big)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Write = %v; want its deadline", err)
		}
	case <-time.After(5 * time.Second):
		go func() { _, _ = io.Copy(io.Discard, peer) }() // lets the stuck write return before cleanup
		t.Fatalf("the write blocked in the kernel past its deadline (then returned %v)", <-done)
	}
}

// A connection keeps no buffer alive after a call: the iovec scratch and the read and
// write slices are cleared, so an idle connection does not hold its last answer's body.
func TestCallsKeepNoBuffer(t *testing.T) {
	_, s, peer := pair(t)
	defer runtime.KeepAlive(s)                 // the connection lives on; what it holds must not
	go func() { _, _ = io.Copy(peer, peer) }() // echoes what it reads
	freed := make(chan string, 3)
	use := func(what string, call func([]byte)) {
		b := make([]byte, 64<<10)
		runtime.AddCleanup(&b[0], func(w string) { freed <- w }, what)
		call(b)
	}
	use("Write's buffer", func(b []byte) {
		if _, err := s.Write(b); err != nil {
			t.Fatal(err)
		}
	})
	use("Writev's buffers", func(b []byte) {
		if _, err := s.Writev([][]byte{b[:1000], b[1000:]}); err != nil {
			t.Fatal(err)
		}
	})
	use("Read's buffer", func(b []byte) {
		if _, err := io.ReadFull(readerOf{s}, b); err != nil {
			t.Fatal(err)
		}
	})
	seen := map[string]bool{}
	for range 100 {
		runtime.GC()
		for len(freed) > 0 {
			seen[<-freed] = true
		}
		if len(seen) == 3 {
			return
		}
		time.Sleep(time.Millisecond)
	}
	for _, w := range []string{"Write's buffer", "Writev's buffers", "Read's buffer"} {
		if !seen[w] {
			t.Errorf("%s is still alive after the call", w)
		}
	}
}
