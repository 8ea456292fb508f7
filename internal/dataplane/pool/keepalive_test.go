package pool

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/sockopt"
)

func TestKeepaliveOf(t *testing.T) {
	tests := []struct {
		name           string
		c              resource.Cluster
		idle, ival     time.Duration
		probes         int
		user, h2i, h2t time.Duration
	}{
		{"defaults", resource.Cluster{}, 10 * time.Second, 5 * time.Second, 3, 25 * time.Second, 10 * time.Second, 10 * time.Second},
		{"DestinationRule fields", resource.Cluster{
			TCPKeepalive:   &resource.TCPKeepalive{Time: 60 * time.Second, Probes: 2},
			HTTP2Keepalive: &resource.HTTP2Keepalive{Interval: 30 * time.Second, Timeout: 5 * time.Second},
		}, 60 * time.Second, 5 * time.Second, 2, 70 * time.Second, 30 * time.Second, 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := keepaliveOf(&tt.c)
			if k.tcp.Idle != tt.idle || k.tcp.Interval != tt.ival || k.tcp.Probes != tt.probes || k.tcp.UserTimeout != tt.user {
				t.Fatalf("tcp %+v", k.tcp)
			}
			h := k.http2Config()
			if h.SendPingTimeout != tt.h2i || h.PingTimeout != tt.h2t {
				t.Fatalf("h2 %+v", h)
			}
		})
	}
}

func TestSetDialerSetsKeepalive(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.93.201:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := NewSet(nil)
	c := &resource.Cluster{Name: "c", TCPKeepalive: &resource.TCPKeepalive{Time: 2 * time.Second, Interval: time.Second, Probes: 4}}
	conn, err := s.Dialer(c, ln.Addr().String()).DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rc, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	got, err := sockopt.Read(rc)
	if err != nil {
		t.Fatal(err)
	}
	if want := (sockopt.Keepalive{Idle: 2 * time.Second, Interval: time.Second, Probes: 4, UserTimeout: 6 * time.Second}); got != want {
		t.Fatalf("socket options %+v, want %+v", got, want)
	}
}
