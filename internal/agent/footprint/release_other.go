//go:build !linux

package footprint

// ReleaseStartupPages does nothing outside Linux.
func ReleaseStartupPages() (Released, error) { return Released{}, nil }
