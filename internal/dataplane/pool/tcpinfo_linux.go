package pool

import (
	"time"

	"golang.org/x/sys/unix"
)

// tcpCloseWait is TCP_CLOSE_WAIT (include/net/tcp_states.h): the peer sent its FIN.
const tcpCloseWait = 8

// closeAge says how long ago the peer's FIN arrived on a connection it closed (the socket
// is in CLOSE_WAIT): the kernel's time since the last segment that acknowledged anything,
// which is the FIN itself on an idle connection. false when the kernel cannot tell (a
// reset, another state).
func closeAge(fd uintptr) (time.Duration, bool) {
	ti, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil || ti.State != tcpCloseWait {
		return 0, false
	}
	return time.Duration(ti.Last_ack_recv) * time.Millisecond, true
}
