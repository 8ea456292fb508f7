package testutil

import (
	"fmt"
	"net/netip"
	"slices"
)

// SubnetUse is one row of the loopback subnet table: 127.0.N.0/24 and the packages
// (module-relative directories) whose tests use it.
type SubnetUse struct {
	N        byte
	Packages []string
	Any      bool // any package may use it
	Use      string
}

// Prefix is the row's 127.0.N.0/24.
func (s SubnetUse) Prefix() netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{127, 0, s.N, 0}), 24)
}

// Subnet is the loopback /24 the table gives the package at dir (module-relative, e.g.
// "test/hardening") for itself alone; it panics when the table has none, which is a
// mistake in the test being written: add a row first.
func Subnet(dir string) netip.Prefix {
	for _, s := range Subnets {
		if len(s.Packages) == 1 && s.Packages[0] == dir {
			return s.Prefix()
		}
	}
	panic(fmt.Sprintf("testutil: no loopback subnet of its own for %s in internal/testutil/subnets_table.go", dir))
}

// FreeSubnets lists the third bytes no row uses (pick one for a new package).
func FreeSubnets() []byte {
	var free []byte
	for n := 2; n < 255; n++ {
		if !slices.ContainsFunc(Subnets, func(s SubnetUse) bool { return s.N == byte(n) }) {
			free = append(free, byte(n))
		}
	}
	return free
}
