//go:build unix

package appprobe

import "syscall"

// setLinger sets SO_LINGER to 1 s on a probe socket, as the kubelet's probe dialer does,
// so that frequent probes do not pile up sockets in TIME-WAIT.
func setLinger(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptLinger(int(fd), syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1, Linger: 1})
	})
	if err != nil {
		return err
	}
	return serr
}
