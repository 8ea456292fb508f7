package translate

import (
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
)

// gatewayTCPFilters are the network filters of a gateway's TCP or TLS chain: the
// authorization filters of the policies that select the gateway (AuthTCPFilters), then
// its tcp_proxy, as Istio builds them.
func (g *generator) gatewayTCPFilters(tcpProxy *listenerpb.Filter) []*listenerpb.Filter {
	return append(AuthTCPFilters(g.m, g.p), tcpProxy)
}
