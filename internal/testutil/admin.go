package testutil

import (
	"net/netip"

	"github.com/lucid-mesh/lucid/internal/contract"
)

// Admin is host:15000 of the admin API of the proxy whose workload address is ip, where
// the proxy binds it by default (contract.AdminAddress: a private 127.255.x.y for a
// loopback workload in local mode).
func Admin(ip string) string {
	return netip.AddrPortFrom(contract.AdminAddress(netip.MustParseAddr(ip)), 15000).String()
}
