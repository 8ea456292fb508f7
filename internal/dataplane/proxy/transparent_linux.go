package proxy

import "golang.org/x/sys/unix"

// setTransparent sets IP_TRANSPARENT, which lets a socket accept TPROXY-delivered
// connections addressed elsewhere.
func setTransparent(fd int) error {
	return unix.SetsockoptInt(fd, unix.SOL_IP, unix.IP_TRANSPARENT, 1)
}
