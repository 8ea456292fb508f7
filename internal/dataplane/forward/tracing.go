package forward

import (
	"github.com/lucid-mesh/lucid/internal/dataplane/tracing"
)

// startSpan makes the tracing decision for a request whose listener traces (its HTTP
// connection manager has a tracing block) and, when the request is traced or continues a
// trace, starts its span: a client span for a sidecar's outbound hop, a server span for
// its inbound hop and at the edge (a gateway). The decision and the span's context are
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
	}
	kind := tracing.KindServer
	if x.in.Direction == "outbound" && !x.edge() {
		kind = tracing.KindClient
	}
	hdr := x.r.Header
	hdr["X-Request-Id"] = []string{x.info.RequestID}
	x.span = tr.Start(hdr, tracing.StartOptions{Kind: kind, Settings: &settings, Internal: !x.edge(), Scheme: requestScheme(x.r)})
	x.info.RequestID = hdr.Get("X-Request-Id") // the trace reason packed in, as every later hop sees it
}

// finishSpan ends the request's span with its record, named after the route's decorator.
func (x *exchange) finishSpan() {
	if x.span == nil {
		return
	}
	if x.rt != nil {
		x.span.Rename(x.rt.Operation)
	}
	x.span.Finish(x.info)
	x.span = nil
}
