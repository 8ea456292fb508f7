//go:build !linux

package origdst

import (
	"errors"
	"net/netip"
)

// errNotLinux: SO_ORIGINAL_DST is netfilter's, and transparent capture needs Linux.
var errNotLinux = errors.New("transparent capture needs Linux (netfilter's SO_ORIGINAL_DST)")

func originalDst4(int) (netip.AddrPort, error) { return netip.AddrPort{}, errNotLinux }

func originalDst6(int) (netip.AddrPort, error) { return netip.AddrPort{}, errNotLinux }
