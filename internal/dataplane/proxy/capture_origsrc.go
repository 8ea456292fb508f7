package proxy

import (
	"net/netip"

	"github.com/lucid-mesh/lucid/internal/dataplane/pool"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// defaultOriginalSrcMark is the mark of the inbound sidecar's connections to the app under
// TPROXY: Istio's original_src mark and the capture rules' ISTIO_INBOUND_TPROXY_MARK, 1337.
const defaultOriginalSrcMark = 1337

// originalSource is the source of the upstream connections made for a connection that a
// capture socket of inbound listener l accepted from remote: under TPROXY interception
// (Options.Transparent) the client's own address, as Istio's original_src listener filter
// on virtualInbound makes Envoy dial the app, so the app sees who called; otherwise none
// (REDIRECT: the cluster's source, 127.0.0.6 or the pod's address). dst is the original
// destination ("ip:port"), where a loopback upstream is then dialled. The mark is the
// listener's original_src mark when its configuration has one.
func (p *Proxy) originalSource(l *resource.Listener, remote netip.AddrPort, dst string) pool.OriginalSource {
	if !p.opts.Transparent || l == nil || l.Direction != resource.Inbound || !remote.Addr().Is4() {
		return pool.OriginalSource{}
	}
	mark := uint32(defaultOriginalSrcMark)
	if l.OriginalSrcMark != 0 {
		mark = l.OriginalSrcMark
	}
	local, _ := netip.ParseAddrPort(dst) // the pod's address the client called
	return pool.OriginalSource{Addr: remote.Addr(), Mark: mark, Local: local.Addr()}
}
