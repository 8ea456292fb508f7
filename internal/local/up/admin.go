package up

import (
	"fmt"
	"net/netip"

	"github.com/lucid-mesh/lucid/internal/contract"
)

// Each proxy's admin API gets a private loopback address, contract.AdminAddress of its
// workload address (127.0.10.1 → 127.255.10.1): Istio binds the admin API to 127.0.0.1
// inside the pod; here every workload shares loopback, so 127.0.0.1:15000 could serve one
// proxy only, and the workload's own address is reachable from every other workload. The
// proxy derives the same address when started by hand, and tells the control plane (node
// metadata ADMIN_ADDRESS), where `lucid proxy-config`, `lucid why` and the dashboard find it.
// The proxies admit only 127.0.0.1 and the workload's own addresses as callers.

// AdminNet is the loopback range reserved for the proxies' admin APIs.
var AdminNet = contract.LocalAdminNet

// planAdmin gives every workload its admin address, refusing workloads that use the
// reserved range themselves or whose admin addresses would clash.
func planAdmin(p *Plan) error {
	taken := map[netip.Addr]string{}
	for i := range p.Workloads {
		w := &p.Workloads[i]
		for _, a := range []string{w.Address, w.AppAddress} {
			if ip, err := netip.ParseAddr(a); err == nil && AdminNet.Contains(ip) {
				return fmt.Errorf("workload %s/%s uses %s, inside %s, which lucid up reserves for the proxies' admin APIs; pick another loopback address",
					w.Namespace, w.Name, a, AdminNet)
			}
		}
		ip, err := netip.ParseAddr(w.Address)
		if err != nil {
			return fmt.Errorf("workload %s/%s: address %q: %w", w.Namespace, w.Name, w.Address, err)
		}
		admin := contract.AdminAddress(ip)
		if other, ok := taken[admin]; ok {
			return fmt.Errorf("workloads %s and %s/%s would share the admin address %s (it is 127.255 and the last two bytes of the workload address): give one another address",
				other, w.Namespace, w.Name, admin)
		}
		taken[admin] = w.Namespace + "/" + w.Name
		w.Admin = admin.String()
	}
	return nil
}
