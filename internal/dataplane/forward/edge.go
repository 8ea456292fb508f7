package forward

import "net/http"

// Edge header trust. A connection manager that uses the remote address (use_remote_address:
// Istio's gateways) is the mesh's edge. Envoy (1.36 on, and Istio with it) treats no
// client address as internal unless internal_address_config lists it, so at the edge every
// request is external: the x-envoy-* headers that steer the proxy or pretend to come from
// inside (retries, timeouts, the internal marker, the downstream identity) are removed
// before anything reads them, and x-envoy-external-address is set to the client's address.
// A client outside the mesh cannot turn one request into a hundred attempts, or force a
// 504 with a 1 ms timeout.

// edgeOnly are the headers Envoy's connection manager removes from external requests
// (ConnectionManagerUtility::cleanInternalHeaders, the edge case), besides the retry and
// timeout headers retryheaders.go names.
var edgeOnly = []string{
	"X-Envoy-Internal",
	"X-Envoy-Decorator-Operation",
	"X-Envoy-Downstream-Service-Cluster",
	"X-Envoy-Downstream-Service-Node",
	"X-Envoy-Upstream-Alt-Stat-Name",
	"X-Envoy-Upstream-Rq-Timeout-Alt-Response",
	"X-Envoy-Expected-Rq-Timeout-Ms",
	"X-Envoy-Force-Trace",
	"X-Envoy-Ip-Tags",
	"X-Envoy-Original-Url",
	"X-Envoy-Hedge-On-Per-Try-Timeout",
	"X-Envoy-External-Address",
}

// edge reports whether the request came in at the mesh's edge.
func (x *exchange) edge() bool { return x.in.HTTP != nil && x.in.HTTP.UseRemoteAddress }

// cleanEdgeHeaders removes what an external client may not send on, and records the
// client's address as Envoy does at the edge.
func (x *exchange) cleanEdgeHeaders(h http.Header) {
	for _, k := range edgeOnly {
		delete(h, k)
	}
	for _, k := range retryHeaderNames {
		delete(h, k)
	}
	if a := x.in.RemoteAddr; a.IsValid() {
		h.Set("X-Envoy-External-Address", a.Addr().Unmap().String())
	}
}
