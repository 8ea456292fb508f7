package up

import (
	"fmt"
	"net/netip"
)

// Each proxy's admin API gets a private loopback address. Istio binds the admin API to
// 127.0.0.1 inside the pod; here every workload shares loopback, so 127.0.0.1:15000 could
// serve one proxy only, and the workload's own address is reachable from every other
// workload. `lucid up` reserves AdminNet and gives the n-th proxy (in plan order) its n-th
// address; the proxy tells the control plane (node metadata ADMIN_ADDRESS), where
// `lucid proxy-config`, `lucid why` and the dashboard find it. The proxies admit only
// 127.0.0.1 and the workload's own addresses as callers.

// AdminNet is the loopback range reserved for the proxies' admin APIs.
var AdminNet = netip.MustParsePrefix("127.255.0.0/16")

// adminAddress is the n-th (0-based) admin address: 127.255.0.1, 127.255.0.2, ...
func adminAddress(n int) string {
	base := AdminNet.Addr().As4()
	n++ // skip the network address
	base[2], base[3] = byte(n>>8), byte(n)
	return netip.AddrFrom4(base).String()
}

// planAdmin gives every workload its admin address, refusing workloads that use the
// reserved range themselves.
func planAdmin(p *Plan) error {
	if len(p.Workloads) >= 1<<16-2 {
		return fmt.Errorf("%d workloads: more than the %s admin range holds", len(p.Workloads), AdminNet)
	}
	for i := range p.Workloads {
		w := &p.Workloads[i]
		for _, a := range []string{w.Address, w.AppAddress} {
			if ip, err := netip.ParseAddr(a); err == nil && AdminNet.Contains(ip) {
				return fmt.Errorf("workload %s/%s uses %s, inside %s, which lucid up reserves for the proxies' admin APIs; pick another loopback address",
					w.Namespace, w.Name, a, AdminNet)
			}
		}
		w.Admin = adminAddress(i)
	}
	return nil
}
