package translate

import (
	"net/netip"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// TCP services that share a port (DNS capture, docs/capture.md): 0.0.0.0_<port> can send a
// port's connections to one service only, so under capture each TCP service on a shared
// port also gets Istio's <address>_<port> listener for its address (declared, else
// auto-allocated for the name table, nds.go): a captured connection is handed to the
// listener of its original destination first (proxy/capture.go). The addresses do not
// depend on the proxy, so every proxy of a class gets the same listeners; one that never
// resolves the allocated addresses simply never sees connections to them. The explicit
// proxy of local mode keeps using 0.0.0.0_<port> (it sorts first).

// sharedPortListeners are the <address>_<port> tcp_proxy listeners of the TCP services on
// ports (not in http) that more than one TCP service imports.
func (g *generator) sharedPortListeners(http map[uint32]bool) []proto.Message {
	var alloc map[string]netip.Addr
	var out []proto.Message
	for _, port := range g.listenerPorts() {
		if http[port] {
			continue
		}
		var tcp []*model.Service
		for _, s := range g.scope.ServicesOn(port) {
			if p, _ := s.Port(port); !p.IsHTTP() {
				tcp = append(tcp, s)
			}
		}
		if len(tcp) < 2 {
			continue
		}
		if alloc == nil {
			alloc = AutoAllocated(g.m) // nds.go
		}
		seen := map[netip.Addr]bool{}
		for _, s := range tcp {
			ips, _ := addressesOf(s)
			if ip, ok := alloc[allocKey(s)]; ok && len(ips) == 0 {
				ips = []netip.Addr{ip}
			}
			cluster := ClusterName("outbound", port, "", s.Host)
			for _, ip := range ips {
				if seen[ip] || !ip.Is4() { // capture is IPv4 only
					continue
				}
				seen[ip] = true
				out = append(out, &listenerpb.Listener{
					Name:             ip.String() + "_" + itoa(port),
					Address:          socketAddress(ip.String(), port),
					BindToPort:       wrapperspb.Bool(false),
					TrafficDirection: corepb.TrafficDirection_OUTBOUND,
					FilterChains: []*listenerpb.FilterChain{{
						Name:    cluster,
						Filters: []*listenerpb.Filter{tcpProxyFilter(cluster, cluster)},
					}},
				})
			}
		}
	}
	return out
}
