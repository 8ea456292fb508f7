package forward

import "github.com/lucid-mesh/lucid/internal/dataplane/route"

// configuredHeaders applies the route's response header operations to a reply the route
// itself makes (a redirect or a direct response), as Envoy's router finalises a direct
// response's headers with the route's: Istio's `headers.response` reaches these replies
// too. They run before the reply's framing headers, so a content-type set here replaces
// the text/plain a body would otherwise get; Location may be overridden as well.
func (x *exchange) configuredHeaders() {
	if x.rt == nil {
		return
	}
	route.ApplyHeaders(x.w.Header(), x.rt.ResponseHeadersToAdd, x.rt.ResponseHeadersToRemove)
}
