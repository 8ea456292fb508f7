// Package origdst reads where a captured connection was going. It sits at the very start
// of the sidecar's path for transparent capture: the pod's capture rules (`lucid iptables`)
// redirect the app's outbound TCP connections to the outbound port (15001) and inbound ones
// to 15006; the sidecar accepts them and asks OriginalDst for the address the client
// dialled, which picks the listener (Envoy's original_dst listener filter).
package origdst

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// soOriginalDst is SO_ORIGINAL_DST (linux/netfilter_ipv4.h), also IP6T_SO_ORIGINAL_DST.
const soOriginalDst = 80

// ErrNotTracked is returned when the kernel has no NAT record of the connection (it was not
// redirected, and connection tracking is off).
var ErrNotTracked = errors.New("no original destination: the connection is not tracked by netfilter")

// OriginalDst returns the destination the client dialled before the capture rules
// redirected the connection (SO_ORIGINAL_DST of a REDIRECT-ed connection). For a connection
// that was not redirected, or one delivered by TPROXY (which keeps the destination), it is
// the connection's local address: compare with conn.LocalAddr() to tell a captured
// connection from one addressed to the listener itself.
func OriginalDst(conn net.Conn) (netip.AddrPort, error) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("original destination: %T has no socket", conn)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("original destination: %w", err)
	}
	local, _ := conn.LocalAddr().(*net.TCPAddr)
	v6 := local != nil && local.IP.To4() == nil
	var (
		dst   netip.AddrPort
		opErr error
	)
	err = raw.Control(func(fd uintptr) {
		if v6 {
			dst, opErr = originalDst6(int(fd))
		} else {
			dst, opErr = originalDst4(int(fd))
		}
	})
	if err == nil {
		err = opErr
	}
	if errors.Is(err, unix.ENOENT) {
		return netip.AddrPort{}, ErrNotTracked
	}
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("original destination: getsockopt SO_ORIGINAL_DST: %w", err)
	}
	return dst, nil
}
