package sockopt

import (
	"context"
	"net"
	"testing"
	"time"
)

func optsOf(t *testing.T, c net.Conn) Keepalive {
	t.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	k, err := Read(rc)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestResolved(t *testing.T) {
	tests := []struct {
		name string
		in   Keepalive
		want Keepalive
	}{
		{"zero is the default", Keepalive{}, Keepalive{Idle: 10 * time.Second, Interval: 5 * time.Second, Probes: 3, UserTimeout: 25 * time.Second}},
		{"partial override keeps the rest", Keepalive{Idle: time.Minute}, Keepalive{Idle: time.Minute, Interval: 5 * time.Second, Probes: 3, UserTimeout: 75 * time.Second}},
		{"explicit user timeout", Keepalive{UserTimeout: 7 * time.Second}, Keepalive{Idle: 10 * time.Second, Interval: 5 * time.Second, Probes: 3, UserTimeout: 7 * time.Second}},
		{"disabled stays disabled", Keepalive{Disabled: true}, Keepalive{Disabled: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.in.Resolved(); got != tt.want {
				t.Fatalf("Resolved() = %+v, want %+v", got, tt.want)
			}
		})
	}
	if b := Default().Bound(); b > 30*time.Second {
		t.Fatalf("default bound %s exceeds the promised 30s", b)
	}
}

func TestDialerAndListenerSetOptions(t *testing.T) {
	tests := []struct {
		name string
		k    Keepalive
		want Keepalive
	}{
		{"default", Keepalive{}, Keepalive{Idle: 10 * time.Second, Interval: 5 * time.Second, Probes: 3, UserTimeout: 25 * time.Second}},
		{"custom", Keepalive{Idle: 2 * time.Second, Interval: time.Second, Probes: 4}, Keepalive{Idle: 2 * time.Second, Interval: time.Second, Probes: 4, UserTimeout: 6 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var lc net.ListenConfig
			raw, err := lc.Listen(context.Background(), "tcp", "127.0.93.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ln := Listener(raw, tt.k)
			defer ln.Close()
			accepted := make(chan net.Conn, 1)
			go func() {
				c, err := ln.Accept()
				if err == nil {
					accepted <- c
				}
				close(accepted)
			}()
			d := &net.Dialer{Timeout: time.Second}
			ConfigureDialer(d, tt.k)
			c, err := d.DialContext(context.Background(), "tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := optsOf(t, c); got != tt.want {
				t.Errorf("dialled socket: %+v, want %+v", got, tt.want)
			}
			s, ok := <-accepted
			if !ok {
				t.Fatal("accept failed")
			}
			defer s.Close()
			if got := optsOf(t, s); got != tt.want {
				t.Errorf("accepted socket: %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDisabled(t *testing.T) {
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.93.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := &net.Dialer{}
	ConfigureDialer(d, Keepalive{Disabled: true})
	c, err := d.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := optsOf(t, c); !got.Disabled || got.UserTimeout != 0 {
		t.Fatalf("disabled: got %+v", got)
	}
	if err := Apply(c, Keepalive{}); err != nil {
		t.Fatal(err)
	}
	if got := optsOf(t, c); got.Disabled || got.UserTimeout != 25*time.Second {
		t.Fatalf("Apply on an established conn: got %+v", got)
	}
}
