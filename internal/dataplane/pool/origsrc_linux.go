package pool

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// transparentControl sets IP_TRANSPARENT (binding a foreign address needs CAP_NET_ADMIN,
// as under TPROXY the proxy has) and SO_MARK on an upstream socket before it binds.
func transparentControl(c syscall.RawConn, mark uint32) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_TRANSPARENT, 1); serr != nil {
			serr = fmt.Errorf("original source: IP_TRANSPARENT (TPROXY interception needs CAP_NET_ADMIN): %w", serr)
			return
		}
		if mark != 0 {
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark)); serr != nil {
				serr = fmt.Errorf("original source: SO_MARK %d: %w", mark, serr)
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}
