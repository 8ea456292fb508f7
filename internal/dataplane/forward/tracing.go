package forward

import (
	"github.com/lucid-mesh/lucid/internal/dataplane/tracing"
)

// startSpan makes the tracing decision for a request whose listener traces (its HTTP
// connection manager has a tracing block) and, when the request is traced or continues a
// trace, starts its span: a client span for a sidecar's outbound hop, a server span for
// its inbound hop and at the edge (a gateway, with a client span for its upstream request). The decision and the span's context are
// written into the request's headers as Envoy's connection manager does, so every
// attempt, mirror and upgrade sends them on: x-request-id with the trace reason,
// traceparent/tracestate and B3. It never blocks; a request that is not traced costs the
// decision only.
func (x *exchange) startSpan() {
	h := x.in.HTTP
	if h == nil || h.Tracing == nil || x.f.o.Tracers == nil {
		return
	}
	tr := x.f.o.Tracers.Tracer(h.Tracing.Provider)
	if tr == nil {
		return
	}
	t := h.Tracing
	settings := tracing.Settings{
		Sampling:         tracing.Sampling{Random: t.RandomSampling, Client: t.ClientSampling, Overall: t.OverallSampling},
		CustomTags:       t.CustomTags,
		MaxPathTagLength: t.MaxPathTagLength,
		IgnoreRequestID:  t.IgnoreRequestID,
	}
	kind := tracing.KindServer
	if x.in.Direction == "outbound" && !x.edge() {
		kind = tracing.KindClient
	}
	hdr := x.r.Header
	// The request id goes upstream in prepare (x.info.RequestID); the tracer only packs the
	// trace reason into it, so an unsampled request writes no header and allocates nothing.
	o := tracing.StartOptions{Kind: kind, Internal: !x.edge(), Scheme: requestScheme(x.r)}
	x.spans.own, x.info.RequestID = tr.StartRequest(x.info.RequestID, hdr, &settings, o)
	if x.edge() && x.spans.own != nil {
		// A gateway is a hop of its own (Istio sets spawn_upstream_span on gateways): the
		// upstream request gets a client span, the child of the gateway's server span, and
		// it is that span's context the next hop continues.
		o.Kind, o.Internal = tracing.KindClient, true
		x.spans.upstream, x.info.RequestID = tr.StartRequest(x.info.RequestID, hdr, &settings, o)
	}
}

// spans are a request's spans: its own and, at a gateway, its upstream request's.
type spans struct {
	own, upstream *tracing.Active
}

// finishSpan ends the request's spans with its record: its own named after the route's
// decorator, the upstream one as Envoy's router names it ("router <cluster> egress").
func (x *exchange) finishSpan() {
	if x.spans.own == nil {
		return
	}
	if x.spans.upstream != nil {
		if x.info.UpstreamCluster != "" {
			x.spans.upstream.Rename("router " + x.info.UpstreamCluster + " egress")
		}
		x.spans.upstream.Finish(x.info)
	}
	if x.rt != nil {
		x.spans.own.Rename(x.rt.Operation)
	}
	x.spans.own.Finish(x.info)
	x.spans = spans{}
}
