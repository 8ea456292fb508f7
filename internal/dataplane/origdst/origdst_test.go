package origdst

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/lucid-mesh/lucid/internal/testutil/netns"
)

// A connection to 127.0.97.2:80 redirected (iptables REDIRECT) to a listener on
// 127.0.0.1:15001 reports 127.0.97.2:80; one addressed to the listener reports its own
// address. The rules live in a private network namespace.
func TestOriginalDstRedirected(t *testing.T) {
	netns.Run(t, "TestOriginalDstChild", "iptables")
}

func TestOriginalDstChild(t *testing.T) {
	netns.Child(t)
	netns.Sh(t, "iptables -t nat -A OUTPUT -p tcp -d 127.0.97.2 --dport 80 -j REDIRECT --to-ports 15001")
	ln, err := net.Listen("tcp", "127.0.0.1:15001")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tc := range []struct{ dial, want string }{
		{"127.0.97.2:80", "127.0.97.2:80"},
		{"127.0.0.1:15001", "127.0.0.1:15001"},
	} {
		c, err := net.Dial("tcp", tc.dial)
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		got, err := OriginalDst(s)
		if err != nil {
			t.Fatalf("dial %s: %v", tc.dial, err)
		}
		if got != netip.MustParseAddrPort(tc.want) {
			t.Errorf("dial %s: original destination %s, want %s", tc.dial, got, tc.want)
		}
		c.Close()
		s.Close()
	}
}

// A connection with no socket (a pipe) is an error, not a crash.
func TestOriginalDstNoSocket(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, err := OriginalDst(a); err == nil || errors.Is(err, ErrNotTracked) {
		t.Fatalf("pipe: %v", err)
	}
}
