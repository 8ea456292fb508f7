package rbac

import (
	"net/netip"
	"strings"
)

// RemoteAddress is the client address the HTTP connection manager derives from
// x-forwarded-for (Envoy's ConnectionManagerUtility): Istio's remote.ip and
// remoteIpBlocks. direct is the connection's peer; xff the x-forwarded-for values (several
// headers count as one list); useRemoteAddress and trustedHops are the HCM's
// use_remote_address and xff_num_trusted_hops (Istio: false and 0 on sidecars; true and
// the gateway's numTrustedProxies on gateways).
//
//   - use_remote_address with trusted hops N > 0: the Nth address from the right of XFF
//     (the connection's peer counts as the first hop);
//   - use_remote_address without trusted hops: the connection's peer;
//   - otherwise: the (N+1)th address from the right of XFF.
//
// When XFF is missing, too short or not an address there, the connection's peer.
func RemoteAddress(direct netip.Addr, xff []string, useRemoteAddress bool, trustedHops uint32) netip.Addr {
	var a netip.Addr
	switch {
	case useRemoteAddress && trustedHops > 0:
		a = lastXFFAddress(xff, trustedHops-1)
	case !useRemoteAddress:
		a = lastXFFAddress(xff, trustedHops)
	}
	if !a.IsValid() {
		return direct
	}
	return a
}

// lastXFFAddress is Envoy's getLastAddressFromXFF: the address skip entries from the end.
func lastXFFAddress(xff []string, skip uint32) netip.Addr {
	if len(xff) == 0 {
		return netip.Addr{}
	}
	s := xff[0]
	if len(xff) > 1 {
		s = strings.Join(xff, ",")
	}
	for range skip {
		i := strings.LastIndexByte(s, ',')
		if i < 0 {
			return netip.Addr{}
		}
		s = s[:i]
	}
	if i := strings.LastIndexByte(s, ','); i >= 0 && i+1 < len(s) {
		s = s[i+1:]
	}
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}
