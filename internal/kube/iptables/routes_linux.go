package iptables

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// addRoutes installs TPROXY mode's policy routing (Istio's tproxy.ConfigureRoutes): packets
// marked by ISTIO_DIVERT/TPROXY look up table RouteTable, whose one route delivers them
// locally, so they reach the inbound capture port whatever their destination address.
// Equivalent to `ip rule add fwmark MARK lookup TABLE` and
// `ip route add local default dev lo table TABLE`. Present routes are kept.
func addRoutes(p Plan) error {
	if p.RouteTable == 0 {
		return nil
	}
	rule, route, err := tproxyRoutes(p)
	if err != nil {
		return err
	}
	if err := netlink.RuleAdd(rule); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("ip rule add fwmark %d lookup %d: %w", p.RouteMark, p.RouteTable, err)
	}
	if err := netlink.RouteAdd(route); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("ip route add local default dev lo table %d: %w", p.RouteTable, err)
	}
	return nil
}

// removeRoutes deletes what addRoutes installs; removed tells whether anything was there.
func removeRoutes(p Plan) (removed bool, err error) {
	if p.RouteTable == 0 {
		return false, nil
	}
	rule, route, err := tproxyRoutes(p)
	if err != nil {
		return false, err
	}
	gone := func(err error) bool { return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) }
	if err := netlink.RouteDel(route); err == nil {
		removed = true
	} else if !gone(err) {
		return removed, fmt.Errorf("ip route del local default dev lo table %d: %w", p.RouteTable, err)
	}
	// One rule per run of Apply at most, but delete every copy an interrupted run may have left.
	for {
		err := netlink.RuleDel(rule)
		if err != nil {
			if gone(err) {
				return removed, nil
			}
			return removed, fmt.Errorf("ip rule del fwmark %d lookup %d: %w", p.RouteMark, p.RouteTable, err)
		}
		removed = true
	}
}

func tproxyRoutes(p Plan) (*netlink.Rule, *netlink.Route, error) {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return nil, nil, fmt.Errorf("loopback interface: %w", err)
	}
	rule := netlink.NewRule()
	rule.Family = unix.AF_INET
	rule.Table = int(p.RouteTable)
	rule.Mark = p.RouteMark
	_, all, _ := net.ParseCIDR("0.0.0.0/0")
	route := &netlink.Route{
		Dst: all, Scope: netlink.SCOPE_HOST, Type: unix.RTN_LOCAL,
		Table: int(p.RouteTable), LinkIndex: lo.Attrs().Index,
	}
	return rule, route, nil
}
