package pool

import (
	"net"
	"testing"
	"time"
)

// TestCloseAge: the kernel says how long ago the peer's FIN arrived, so a close found late
// is still dated right; a connection the peer did not close has no close age.
func TestCloseAge(t *testing.T) {
	ln := listen95(t, "127.0.95.6")
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv := <-accepted
	age := func() (time.Duration, bool) {
		rc, err := c.(*net.TCPConn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var d time.Duration
		var ok bool
		if err := rc.Control(func(fd uintptr) { d, ok = closeAge(fd) }); err != nil {
			t.Fatal(err)
		}
		return d, ok
	}
	if _, ok := age(); ok {
		t.Fatal("a close age on an open connection")
	}
	_ = srv.Close()
	closed := time.Now()
	time.Sleep(300 * time.Millisecond)
	d, ok := age()
	if since := time.Since(closed); !ok || d > since+20*time.Millisecond || d < 250*time.Millisecond {
		t.Fatalf("close age %s %v, want about %s", d, ok, since)
	}
}
