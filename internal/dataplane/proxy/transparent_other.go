//go:build !linux

package proxy

import "errors"

// setTransparent: TPROXY is Linux's.
func setTransparent(int) error { return errors.New("TPROXY interception needs Linux") }
