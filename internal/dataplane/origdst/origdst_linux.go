package origdst

import (
	"encoding/binary"
	"net/netip"

	"golang.org/x/sys/unix"
)

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
