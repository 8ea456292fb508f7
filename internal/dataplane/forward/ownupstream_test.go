package forward

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

// An endpoint that is the address the request arrived on would send it straight back:
// it is answered 502 with the reason, whichever way the addresses are written.
func TestOwnUpstream(t *testing.T) {
	for _, tc := range []struct {
		local string // the request's arrival address
		addr  string // the endpoint picked
		loop  bool
	}{
		{"127.0.0.1:9080", "127.0.0.1:9080", true},
		{"127.0.0.1:9080", "127.0.0.1:9081", false},
		{"127.0.0.1:9080", "127.0.0.10:9080", false},
		{"127.0.0.1:80", "127.0.0.1:8080", false}, // the same last digits, a longer port
		{"127.0.0.1:8080", "127.0.0.1:80", false},
		{"127.0.0.1:8080", "127.0.0.1:18080", false},
		{"127.0.0.1:0", "127.0.0.1:0", true},
		{"127.0.0.1:65535", "127.0.0.1:65535", true},
		{"[::1]:9080", "[::1]:9080", true},
		{"[fd00::1]:80", "[fd00::1]:80", true},
		{"[fd00::1]:80", "fd00::1:80", false}, // not how hosts are keyed
		{"[fe80::1%eth0]:80", "[fe80::1%eth0]:80", true},
		{"[fe80::1%a-very-long-interface-name-that-does-not-fit-the-buffer]:80", "[fe80::1%a-very-long-interface-name-that-does-not-fit-the-buffer]:80", true},
	} {
		in := &Inbound{Direction: "outbound", LocalAddr: netip.MustParseAddrPort(tc.local)}
		r := ownUpstream(in, tc.addr, "outbound|9080||reviews.default.svc.cluster.local")
		if got := r != nil; got != tc.loop {
			t.Errorf("arrived on %s, endpoint %s: loop %v, want %v", tc.local, tc.addr, got, tc.loop)
			continue
		}
		if r != nil && (r.Status != 502 || !strings.Contains(r.Explanation, "endpoint "+tc.addr+" of cluster outbound|9080||reviews")) {
			t.Errorf("reply %d %q", r.Status, r.Explanation)
		}
	}
	// Without an arrival address, only an inbound request to one of the proxy's own
	// listeners is a loop.
	in := &Inbound{Direction: "inbound", Own: map[string]bool{"127.0.0.1:15006": true}}
	if ownUpstream(in, "127.0.0.1:15006", "c") == nil || ownUpstream(in, "127.0.0.1:8080", "c") != nil {
		t.Error("inbound: own listeners not told from the application")
	}
}

// hasPort, the test isAddrPort makes before building the address's string, agrees with
// the string for every port and the usual ways an address ends.
func TestHasPort(t *testing.T) {
	for _, port := range []uint16{0, 1, 9, 10, 80, 443, 8080, 9080, 15001, 65535} {
		for _, addr := range []string{"", ":", "1", "127.0.0.1", "127.0.0.1:", "[::1]", "reviews"} {
			for _, p := range []string{"0", "1", "9", "10", "80", "443", "8080", "08080", "9080", "15001", "65535", "x80"} {
				s := addr + ":" + p
				if addr == "" || addr == ":" {
					s = addr + p
				}
				want := strings.HasSuffix(s, ":"+strconv.Itoa(int(port)))
				if got := hasPort(s, port); got != want {
					t.Errorf("hasPort(%q, %d) = %v, want %v", s, port, got, want)
				}
			}
		}
	}
}
