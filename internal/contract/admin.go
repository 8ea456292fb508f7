package contract

import "net/netip"

// AdminMetadata is the node metadata key under which a proxy tells the control plane
// where its admin API listens (the CLI and the dashboard find it there).
const AdminMetadata = "ADMIN_ADDRESS"

// LocalAdminNet is the loopback range Lucid's local mode reserves for the proxies' admin APIs.
var LocalAdminNet = netip.MustParsePrefix("127.255.0.0/16")

// AdminAddress is where a proxy whose workload address is ip binds its admin API by
// default. Istio binds it to 127.0.0.1 inside the pod, and so does Lucid when ip is a pod's
// (not loopback). In local mode every workload shares loopback, so 127.0.0.1:15000 could
// serve one proxy only and the workload's own address is reachable from every other
// workload: the proxy takes its own private address in LocalAdminNet instead, the last two
// bytes of ip (127.0.10.1 → 127.255.10.1), the same whether `lucid up` starts it or a
// person does.
func AdminAddress(ip netip.Addr) netip.Addr {
	if !ip.Is4() || !ip.IsLoopback() {
		return netip.MustParseAddr("127.0.0.1")
	}
	b, base := ip.As4(), LocalAdminNet.Addr().As4()
	return netip.AddrFrom4([4]byte{base[0], base[1], b[2], b[3]})
}
