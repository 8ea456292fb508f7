package forward

import (
	"net/http"
	"strings"

	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
	"github.com/lucid-mesh/lucid/internal/dataplane/peermeta"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// PeerMetadata is this workload's side of Istio's HTTP metadata exchange: the values of
// x-envoy-peer-metadata-id and x-envoy-peer-metadata (peermeta.Encode), computed once.
// Empty: the proxy takes part in no exchange.
type PeerMetadata struct {
	ID, Value string
}

// startTelemetry is what a request's arrival does for telemetry (tracing.go: the span;
// here: the metadata exchange). On a sidecar's inbound side the client's metadata
// headers label the request's source in the metrics (the source_* labels) and are
// removed before the application sees them; elsewhere (outbound, or at the edge where
// nothing from outside is trusted) they are dropped: this proxy writes its own once the
// request is routed to a mesh service (sendPeerMetadata).
func (x *exchange) startTelemetry() {
	x.startSpan()
	if x.lacks(http1.FieldXEnvoyPeerMetadata) {
		return
	}
	h := x.r.Header
	v, ok := h[peermeta.HeaderMetadata]
	if !ok {
		return
	}
	if x.in.Direction == "inbound" && len(v) == 1 {
		if p, ok := decodePeer(v[0]); ok {
			p.Principal = x.info.Source.Principal // the peer's certificate, not its word, names it
			x.info.Source = p
		}
	}
	delete(h, peermeta.HeaderMetadata)
	delete(h, peermeta.HeaderID)
}

// sendPeerMetadata adds this workload's metadata to a request about to go to a mesh
// service (a cluster of a registry service, not PassthroughCluster), as Istio's
// metadata exchange filter does on plaintext.
func (x *exchange) sendPeerMetadata() {
	if x.f.peerValue == nil || x.in.Direction == "inbound" || x.cl == nil || x.cl.Config().Info.ServiceHost == "" {
		return
	}
	if x.listed {
		x.upSet(peermeta.HeaderID, x.f.peerID[0])
		x.upSet(peermeta.HeaderMetadata, x.f.peerValue[0])
		return
	}
	x.up.header[peermeta.HeaderID] = x.f.peerID
	x.up.header[peermeta.HeaderMetadata] = x.f.peerValue
}

// exchangeResponseMetadata handles the metadata headers of a response going downstream
// (h): an inbound response carries this workload's metadata to the client's sidecar; an
// outbound one's label the destination (the server's word completes what the endpoint's
// metadata said) and are removed before the application sees them.
func (x *exchange) exchangeResponseMetadata(h http.Header) {
	v, ok := h[peermeta.HeaderMetadata]
	if ok {
		delete(h, peermeta.HeaderMetadata)
		delete(h, peermeta.HeaderID)
	}
	if x.in.Direction == "inbound" {
		if x.f.peerValue != nil {
			h[peermeta.HeaderID] = x.f.peerID
			h[peermeta.HeaderMetadata] = x.f.peerValue
		}
		return
	}
	if !ok || len(v) != 1 {
		return
	}
	if p, ok := decodePeer(v[0]); ok {
		d := &x.info.Destination
		p.Principal = d.Principal
		if d.Workload != "" && d.Workload != p.Workload {
			return // the endpoint the request went to is not who answered (a proxy in between): keep the endpoint's
		}
		*d = p
	}
}

// peerCache keeps decoded metadata by header value: a mesh has few workloads, and each
// sends the same value on every request. Bounded: cleared when full.
var peerCache readCache[streaminfo.Peer]

// decodePeer decodes a peer's x-envoy-peer-metadata; false for a value that is not one
// (the request's labels stay unknown, as Envoy's are).
func decodePeer(v string) (streaminfo.Peer, bool) {
	if p, ok := peerCache.get(v); ok {
		return p, true
	}
	p, err := peermeta.Decode(v)
	if err != nil {
		return streaminfo.Peer{}, false
	}
	// A copy: v is cut from a request's head, whose block of bytes (strslab) a kept key
	// would keep alive.
	peerCache.put(strings.Clone(v), p)
	return p, true
}
