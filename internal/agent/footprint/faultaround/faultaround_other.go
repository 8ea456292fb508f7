//go:build !linux

package faultaround

import "errors"

// Range is one mapping, [Start, End).
type Range struct{ Start, End uintptr }

// Off does nothing outside Linux.
func Off([]Range) error { return errors.New("fault-around is Linux's") }
