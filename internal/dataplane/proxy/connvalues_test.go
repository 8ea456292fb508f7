package proxy

import (
	"net"
	"net/netip"
	"testing"
)

// A connection's addresses, converted once per connection, are what parsing the address
// a request carries (r.RemoteAddr, printed by the server) gave per request: an IPv4
// client of a dual-stack socket in IPv4 form, a zone kept, an address that is not TCP
// parsed from its text.
func TestAddrPortOfIsParsedString(t *testing.T) {
	for _, a := range []net.Addr{
		&net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 80}, // 16 bytes: IPv4 in IPv6 form
		&net.TCPAddr{IP: net.ParseIP("10.1.2.3").To4(), Port: 8080},
		&net.TCPAddr{IP: net.ParseIP("::ffff:127.0.0.1"), Port: 15006},
		&net.TCPAddr{IP: net.ParseIP("fd00::7"), Port: 443},
		&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 9080, Zone: "eth0"},
		&net.UDPAddr{IP: net.ParseIP("127.0.0.2"), Port: 53},
		&net.UnixAddr{Name: "/run/x.sock", Net: "unix"},
		nil,
	} {
		want := netip.AddrPort{}
		if a != nil {
			want, _ = netip.ParseAddrPort(a.String())
		}
		if got := addrPortOf(a); got != want {
			t.Errorf("addrPortOf(%v) = %v (IPv4: %v), want %v (IPv4: %v)", a, got, got.Addr().Is4(), want, want.Addr().Is4())
		}
	}
}
