// Package origdst reads where a captured connection was going. It sits at the very start
// of the sidecar's path for transparent capture: the pod's capture rules (`lucid iptables`)
// redirect the app's outbound TCP connections to the outbound port (15001) and inbound ones
// to 15006; the sidecar accepts them and asks OriginalDst for the address the client
// dialled, which picks the listener (Envoy's original_dst listener filter).
package origdst

import (
	"encoding/binary"
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

// originalDst4 reads a struct sockaddr_in. The kernel copies it into the 16-byte buffer of
// an ip_mreqn-sized option (family, port in network order, address, padding).
func originalDst4(fd int) (netip.AddrPort, error) {
	m, err := unix.GetsockoptIPv6Mreq(fd, unix.SOL_IP, soOriginalDst)
	if err != nil {
		return netip.AddrPort{}, err
	}
	b := m.Multiaddr
	addr := netip.AddrFrom4([4]byte{b[4], b[5], b[6], b[7]})
	return netip.AddrPortFrom(addr, binary.BigEndian.Uint16(b[2:4])), nil
}

// originalDst6 reads a struct sockaddr_in6 (the first 28 bytes of an ip6_mtuinfo).
func originalDst6(fd int) (netip.AddrPort, error) {
	info, err := unix.GetsockoptIPv6MTUInfo(fd, unix.SOL_IPV6, soOriginalDst)
	if err != nil {
		return netip.AddrPort{}, err
	}
	var port [2]byte
	binary.NativeEndian.PutUint16(port[:], info.Addr.Port) // stored in network order
	return netip.AddrPortFrom(netip.AddrFrom16(info.Addr.Addr), binary.BigEndian.Uint16(port[:])), nil
}
