package ads

import (
	"strconv"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// NodeDNS reads Istio's DNS capture settings from a proxy's node metadata: DNS_CAPTURE (the
// agent serves DNS from the name table, so the proxy gets one) and DNS_AUTO_ALLOCATE
// (ServiceEntries without an address get one in it), from the agent's
// ISTIO_META_DNS_CAPTURE and ISTIO_META_DNS_AUTO_ALLOCATE.
func NodeDNS(node *corepb.Node) (capture, autoAllocate bool) {
	flag := func(key string) bool {
		b, _ := strconv.ParseBool(node.GetMetadata().GetFields()[key].GetStringValue())
		return b
	}
	return flag("DNS_CAPTURE"), flag("DNS_AUTO_ALLOCATE")
}
