// Package tracing makes the sidecar's and the gateway's spans: one per request and hop (a
// client span on a sidecar's outbound side, a server span on its inbound side and at a
// gateway, whose upstream request gets a client span of its own), with Envoy's and
// Istio's span attributes, and sends them to the tracing backend (Providers: one tracer
// per provider the listeners name, exporting through the provider's cluster).
//
// It sits beside the access log on the request path:
//
//	forward (request arrives) ─► Tracer.Start: the sampling decision (x-request-id's trace
//	    reason, x-client-trace-id, x-envoy-force-trace, random sampling, then the parent's
//	    sampled flag) and the parent span context (W3C traceparent, B3 single or multi header)
//	    ─► headers for the upstream request (traceparent, tracestate, x-b3-*)
//	forward (request ends) ─► Active.Finish(streaminfo.Info) ─► Batcher (bounded, never
//	    blocks: a full queue drops and counts) ─► OTLP/gRPC, OTLP/HTTP or Zipkin v2
//
// The decision follows Envoy's: the reason is packed into the 14th hex digit of the UUID
// x-request-id ('9' sampled, 'a' forced by x-envoy-force-trace, 'b' forced by the client),
// so every hop of a request reaches the same verdict; random sampling hashes the request
// id, so it is stable across hops too. A tracer that is given a parent span context
// follows the parent's sampled flag, as Envoy's OpenTelemetry and Zipkin tracers do.
package tracing
