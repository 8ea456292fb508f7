package translate

import (
	"net/netip"
	"slices"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/lucid-mesh/lucid/internal/contract/nds"
	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// DNS capture (Istio's ISTIO_META_DNS_CAPTURE, docs/capture.md): a proxy that asks for it
// gets Istio's name table (NDS) of the services its scope makes visible, which the agent's
// DNS proxy answers from. With ISTIO_META_DNS_AUTO_ALLOCATE, ServiceEntries without an
// address get one from 240.240.0.0/16 (nds.AutoAllocate over the whole mesh, so every
// proxy sees the same address and it stays put across pushes); a connection the app makes
// to it is captured and served by the port's outbound listener (0.0.0.0_<port>: tcp_proxy
// to the service's cluster, or the HTTP routes by Host).

// NameTable is proxy p's name table as one resource (a Group of one nds.Message), shared by
// the proxies of one namespace and Sidecar scope under the current mesh.
func (c *Cache) NameTable(p *model.Proxy, autoAllocate bool) *Group {
	c.mu.Lock()
	m := c.mesh
	c.mu.Unlock()
	if m == nil {
		return newGroup(nil)
	}
	p = m.ResolveProxy(p)
	sc := m.SidecarScope(p)
	return c.nds.group(m, sc, autoAllocate)
}

// BuildNameTable is the name table of what scope sc of mesh m makes visible (Istio's
// BuildNameTable): every service host with an address, with its Kubernetes short name and
// namespace for Services; auto-allocated addresses when autoAllocate is on.
func BuildNameTable(m *model.Mesh, sc *model.SidecarScope, autoAllocate bool) nds.Table {
	var alloc map[string]netip.Addr
	if autoAllocate {
		alloc = AutoAllocated(m)
	}
	t := nds.Table{}
	for _, s := range sc.Services() {
		info := nds.Info{Registry: nds.RegistryExternal}
		ips, loopback := addressesOf(s)
		info.IPs = ips
		if ip, ok := alloc[allocKey(s)]; ok && len(ips) == 0 {
			info.IPs = []netip.Addr{ip}
		} else if len(ips) == 0 {
			info.IPs = loopback // what the registry says, unreachable from a pod
		}
		if len(info.IPs) == 0 || nds.ValidHost(s.Host) != nil {
			continue // nothing to answer with (headless and NONE services: the upstream resolver's)
		}
		if s.Config != nil && s.Config.Kind == model.KindKubernetesService {
			info.Registry = nds.RegistryKubernetes
			if short, _, ok := strings.Cut(s.Host, "."); ok && strings.HasSuffix(s.Host, "."+s.Namespace+".svc.cluster.local") {
				info.ShortName, info.Namespace = short, s.Namespace
			}
		}
		t[strings.ToLower(s.Host)] = info
	}
	return t
}

// AutoAllocated is the address nds.AutoAllocate gives each service host of m that needs one,
// by allocKey: the ServiceEntry hosts Istio allocates for (no address, not a wildcard,
// resolution other than NONE, not a Kubernetes Service), and, Lucid's addition, every host
// whose only addresses are loopback ones (a Service of a cluster whose ClusterIP range is
// on loopback, as a single-node test cluster's): a pod's loopback is its own, and the
// capture rules never capture it, so such a name must resolve to an address that is
// captured.
func AutoAllocated(m *model.Mesh) map[string]netip.Addr {
	var keys []string
	for _, s := range m.Services() {
		ips, loopback := addressesOf(s)
		switch {
		case len(ips) == 0 && len(loopback) > 0:
		case len(s.Addresses) == 0 && !strings.HasPrefix(s.Host, "*") && s.Resolution != "NONE" &&
			(s.Config == nil || s.Config.Kind != model.KindKubernetesService):
		default:
			continue
		}
		keys = append(keys, allocKey(s))
	}
	slices.Sort(keys)
	return nds.AutoAllocate(keys)
}

// addressesOf splits a service's addresses into those a name may resolve to and loopback
// ones; CIDRs and the unspecified address are neither.
func addressesOf(s *model.Service) (ips, loopback []netip.Addr) {
	for _, a := range s.Addresses {
		ip, err := netip.ParseAddr(a)
		switch {
		case err != nil || ip.IsUnspecified():
		case ip.Unmap().IsLoopback():
			loopback = append(loopback, ip.Unmap())
		default:
			ips = append(ips, ip.Unmap())
		}
	}
	return ips, loopback
}

func allocKey(s *model.Service) string { return s.Namespace + "/" + s.Host }

// ndsMemo keeps the name tables of one mesh by namespace, scope and allocation.
type ndsMemo struct {
	mu     sync.Mutex
	mesh   *model.Mesh
	groups map[string]*Group
}

func (n *ndsMemo) group(m *model.Mesh, sc *model.SidecarScope, autoAllocate bool) *Group {
	key := sc.Namespace + "\x00" + sc.Key()
	if autoAllocate {
		key += "\x00auto"
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mesh != m {
		n.mesh, n.groups = m, map[string]*Group{}
	}
	g := n.groups[key]
	if g == nil {
		g = &Group{msgs: []proto.Message{nds.Message(BuildNameTable(m, sc, autoAllocate))}}
		n.groups[key] = g
	}
	return g
}
