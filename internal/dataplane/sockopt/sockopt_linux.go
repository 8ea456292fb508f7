package sockopt

import (
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// control sets TCP_USER_TIMEOUT on a raw socket.
func control(rc syscall.RawConn, ut time.Duration) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(ut.Milliseconds()))
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("sockopt: TCP_USER_TIMEOUT: %w", err)
	}
	return nil
}

// controlAll sets every option on a socket before connect.
func controlAll(rc syscall.RawConn, k Keepalive) error {
	if k.Disabled {
		return nil
	}
	k = k.Resolved()
	var serr error
	err := rc.Control(func(fd uintptr) {
		s := int(fd)
		set := func(level, opt, v int) {
			if serr == nil {
				serr = unix.SetsockoptInt(s, level, opt, v)
			}
		}
		set(unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1)
		set(unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, secs(k.Idle))
		set(unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, secs(k.Interval))
		set(unix.IPPROTO_TCP, unix.TCP_KEEPCNT, k.Probes)
		if k.UserTimeout > 0 {
			set(unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(k.UserTimeout.Milliseconds()))
		}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("sockopt: keepalive: %w", err)
	}
	return nil
}

// secs rounds up to whole seconds (the kernel's unit), at least 1.
func secs(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}

// Read returns the options set on a socket (for tests and diagnostics).
func Read(rc syscall.RawConn) (k Keepalive, err error) {
	var serr error
	err = rc.Control(func(fd uintptr) {
		s := int(fd)
		get := func(level, opt int) int {
			v, e := unix.GetsockoptInt(s, level, opt)
			if serr == nil {
				serr = e
			}
			return v
		}
		if get(unix.SOL_SOCKET, unix.SO_KEEPALIVE) == 0 {
			k.Disabled = true
		}
		k.Idle = time.Duration(get(unix.IPPROTO_TCP, unix.TCP_KEEPIDLE)) * time.Second
		k.Interval = time.Duration(get(unix.IPPROTO_TCP, unix.TCP_KEEPINTVL)) * time.Second
		k.Probes = get(unix.IPPROTO_TCP, unix.TCP_KEEPCNT)
		k.UserTimeout = time.Duration(get(unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT)) * time.Millisecond
	})
	if err == nil {
		err = serr
	}
	return k, err
}
