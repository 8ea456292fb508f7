//go:build !linux

package iptables

import "errors"

// errRoutesNotLinux: TPROXY's policy routing is Linux's (netlink), as are the capture rules.
var errRoutesNotLinux = errors.New("TPROXY routes need Linux (ip rule / ip route over netlink)")

// addRoutes fails where there is no netlink; a plan without a route table needs none.
func addRoutes(p Plan) error {
	if p.RouteTable == 0 {
		return nil
	}
	return errRoutesNotLinux
}

// removeRoutes: nothing to remove without netlink.
func removeRoutes(p Plan) (bool, error) {
	if p.RouteTable == 0 {
		return false, nil
	}
	return false, errRoutesNotLinux
}
