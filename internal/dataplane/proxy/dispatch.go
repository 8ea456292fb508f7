package proxy

import (
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// The explicit proxy's dispatch, exported so that `lucid why` (internal/diag/simulate) follows
// exactly the path a request takes.

// PassthroughRoutes turns the default chain's tcp_proxy target into a one-route table.
func PassthroughRoutes(vo *resource.Listener, dst string) *resource.RouteConfig {
	cl := ""
	if vo != nil && vo.DefaultChain != nil && vo.DefaultChain.TCP != nil {
		cl = vo.DefaultChain.TCP.Cluster
	}
	rt := resource.Route{Name: "default", Match: resource.RouteMatch{PathKind: resource.PathPrefix, Path: "/", CaseSensitive: true}}
	switch cl {
	case "", "BlackHoleCluster":
		rt.DirectResponse = &resource.DirectResponse{Status: http.StatusBadGateway}
		rt.Name = "block_all"
	default:
		rt.Action = &resource.RouteAction{Cluster: cl}
	}
	return &resource.RouteConfig{Name: "passthrough", VirtualHosts: []resource.VirtualHost{{Name: "passthrough:" + dst, Domains: []string{"*"}, Routes: []resource.Route{rt}}}}
}

// Destination returns the host and port an explicit-proxy request is addressed to.
func Destination(r *http.Request) (string, uint16) {
	hostport := r.Host
	if r.URL != nil && r.URL.Host != "" {
		hostport = r.URL.Host
	}
	def := uint16(80)
	if r.URL != nil && strings.EqualFold(r.URL.Scheme, "https") {
		def = 443
	}
	host, ps, err := net.SplitHostPort(hostport)
	if err != nil {
		return strings.Trim(hostport, "[]"), def
	}
	var port uint16
	if _, err := fmt.Sscan(ps, &port); err != nil || port == 0 {
		return host, def
	}
	return host, port
}

// ChainFor returns the filter chain of l for a destination port (the default chain when none matches).
func ChainFor(l *resource.Listener, port uint32) *resource.FilterChain {
	for i := range l.FilterChains {
		fc := &l.FilterChains[i]
		if fc.Match.DestinationPort == 0 || fc.Match.DestinationPort == port || port == 0 {
			return fc
		}
	}
	return l.DefaultChain
}
