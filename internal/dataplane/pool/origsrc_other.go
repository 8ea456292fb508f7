//go:build !linux

package pool

import (
	"errors"
	"syscall"
)

// transparentControl: original source needs Linux's IP_TRANSPARENT.
func transparentControl(syscall.RawConn, uint32) error {
	return errors.New("original source: IP_TRANSPARENT is Linux only")
}
