package up

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The pods' network: one bridge `lucid up --capture` creates in the namespace it runs in
// (CaptureBridge, the first address of the pod range), and per pod a veth pair whose host
// end (lucidv<N>) is a port of the bridge and whose other end is the pod's eth0, with the
// pod's address and a default route to the bridge. Pods talk to each other across the
// bridge (layer 2: the host forwards nothing) and to the control plane on the bridge's
// address. Nothing else of the host's network is touched; everything is named lucid*,
// so leftovers of a crashed run are found and removed (cleanLinks).

// CaptureBridge is the bridge's name; pod veths are CaptureVethPrefix<N>.
const (
	CaptureBridge     = "lucidbr0"
	CaptureVethPrefix = "lucidv"
)

// createBridge creates the bridge with addr (the pod range's gateway) and brings it up.
func createBridge(addr netip.Prefix) (netlink.Link, error) {
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: CaptureBridge}}
	if err := netlink.LinkAdd(br); err != nil {
		return nil, fmt.Errorf("ip link add %s type bridge: %w", CaptureBridge, err)
	}
	link, err := netlink.LinkByName(CaptureBridge)
	if err == nil {
		err = netlink.AddrAdd(link, &netlink.Addr{IPNet: ipNet(addr)})
	}
	if err == nil {
		err = netlink.LinkSetUp(link)
	}
	if err != nil {
		_ = netlink.LinkDel(br)
		return nil, fmt.Errorf("setting up bridge %s with %s: %w", CaptureBridge, addr, err)
	}
	return link, nil
}

// connectPod creates the veth pair of pod n (holder's network namespace): the host end on
// the bridge, eth0 in the pod with addr and a default route via gw.
func connectPod(bridge netlink.Link, n, holder int, addr netip.Prefix, gw netip.Addr) error {
	host := fmt.Sprintf("%s%d", CaptureVethPrefix, n)
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: host, MasterIndex: bridge.Attrs().Index},
		PeerName:      fmt.Sprintf("lucidp%d", n),
		PeerNamespace: netlink.NsPid(holder),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("ip link add %s type veth: %w", host, err)
	}
	if l, err := netlink.LinkByName(host); err != nil {
		return err
	} else if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("ip link set %s up: %w", host, err)
	}
	ns, err := netns.GetFromPid(holder)
	if err != nil {
		return fmt.Errorf("the pod's network namespace: %w", err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in the pod: %w", err)
	}
	defer h.Close()
	eth, err := h.LinkByName(veth.PeerName)
	if err == nil {
		err = h.LinkSetName(eth, "eth0")
	}
	if err == nil {
		err = h.AddrAdd(eth, &netlink.Addr{IPNet: ipNet(addr)})
	}
	if err == nil {
		err = h.LinkSetUp(eth)
	}
	if err == nil && addr.Bits() == 32 { // an own address outside the range: the bridge is on-link
		err = h.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Dst: ipNet(netip.PrefixFrom(gw, 32)), Scope: netlink.SCOPE_LINK})
	}
	if err == nil {
		err = h.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Gw: gw.AsSlice()})
	}
	if err != nil {
		return fmt.Errorf("setting up the pod's eth0 (%s, default via %s): %w", addr, gw, err)
	}
	return nil
}

// cleanLinks deletes the bridge and pod veths a previous run left (a veth whose pod is
// gone has already vanished with it). It returns the names removed.
func cleanLinks() ([]string, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("listing network links: %w", err)
	}
	var removed []string
	for _, l := range links {
		name, typ := l.Attrs().Name, l.Type()
		ours := (name == CaptureBridge && typ == "bridge") || (strings.HasPrefix(name, CaptureVethPrefix) && typ == "veth")
		if !ours {
			continue
		}
		if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
			return removed, fmt.Errorf("removing %s left by an earlier lucid up --capture: %w", name, err)
		}
		removed = append(removed, name)
	}
	return removed, nil
}

// hostRoutes are the destinations of the IPv4 routes of the namespace up runs in, but the
// default route (a pod's address or range is more specific and wins over it).
func hostRoutes() ([]netip.Prefix, error) {
	routes, err := netlink.RouteListFiltered(unix.AF_INET, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("listing routes: %w", err)
	}
	var out []netip.Prefix
	for _, rt := range routes {
		if rt.Dst == nil {
			continue
		}
		if p, ok := prefixOf(rt.Dst); ok && p.Bits() > 0 && !p.Addr().IsLoopback() {
			out = append(out, p)
		}
	}
	return out, nil
}

// checkRangeFree fails when the pod range overlaps a route the host has already (the pods
// would shadow a real network).
func checkRangeFree(r netip.Prefix, routes []netip.Prefix) error {
	for _, p := range routes {
		if p.Overlaps(r) {
			return fmt.Errorf("the pod range %s overlaps the route %s on this machine: pick another range with --capture-range", r, p)
		}
	}
	return nil
}

// routeOwnAddresses makes the pods whose own address lies outside the pod range reachable
// on the bridge: a link route to each such address from the host's bridge and from every
// other pod, and in such a pod one to the range (its address is a /32).
func routeOwnAddresses(bridge netlink.Link, pods []*pod, r netip.Prefix) error {
	for _, out := range pods {
		if r.Contains(out.ip) {
			continue
		}
		host := netip.PrefixFrom(out.ip, 32)
		if err := netlink.RouteAdd(&netlink.Route{LinkIndex: bridge.Attrs().Index, Dst: ipNet(host), Scope: netlink.SCOPE_LINK}); err != nil {
			return fmt.Errorf("ip route add %s dev %s: %w", host, CaptureBridge, err)
		}
		for _, pd := range pods {
			dst := host
			if pd == out {
				dst = r
			}
			if err := podRoute(pd.pid(), dst); err != nil {
				return err
			}
		}
	}
	return nil
}

// podRoute adds a link route to dst on the pod's eth0.
func podRoute(holder int, dst netip.Prefix) error {
	ns, err := netns.GetFromPid(holder)
	if err != nil {
		return err
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	eth, err := h.LinkByName("eth0")
	if err == nil {
		err = h.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Dst: ipNet(dst), Scope: netlink.SCOPE_LINK})
	}
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("ip route add %s dev eth0 in a pod: %w", dst, err)
	}
	return nil
}

// dialInPod connects to addr from inside the network namespace of holder (the socket is
// created there; the thread returns to its own namespace before it is released).
func dialInPod(holder int, addr string) (net.Conn, error) {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer orig.Close()
	target, err := netns.GetFromPid(holder)
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	conn, dialErr := net.Dial("tcp", addr)
	if err := netns.Set(orig); err != nil {
		// The thread is in the wrong namespace: leave it locked, Go ends it with the goroutine.
		if conn != nil {
			_ = conn.Close()
		}
		return nil, fmt.Errorf("returning from the pod's namespace: %w", err)
	}
	runtime.UnlockOSThread()
	return conn, dialErr
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones).Masked(), true
}
