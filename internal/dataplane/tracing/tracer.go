package tracing

import (
	"net/http"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/accesslog"
	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// Settings are one listener's (HTTP connection manager's) tracing settings.
type Settings struct {
	Sampling         Sampling
	CustomTags       []CustomTag
	MaxPathTagLength int  // 0: DefaultMaxPathTagLength
	Disabled         bool // Telemetry disableSpanReporting: decide and propagate, export nothing
	// IgnoreRequestID: Envoy's use_request_id_for_trace_sampling false: every request is
	// traced (the "Sampling" reason), x-request-id neither read nor written.
	IgnoreRequestID bool
}

// Tracer makes the spans of one proxy and hands them to its exporter. A nil *Tracer
// traces nothing. Safe for concurrent use.
type Tracer struct {
	node Node
	out  *Batcher
	now  func() time.Time
}

// New returns a tracer for node that exports through out.
func New(node Node, out *Batcher) *Tracer {
	return &Tracer{node: node, out: out, now: time.Now}
}

// StartOptions describe the request a span is started for.
type StartOptions struct {
	Kind      Kind
	Operation string // the span name: Istio's route decorator, "<host>:<port>/*"
	Settings  *Settings
	// Internal is whether the downstream client is trusted (a mesh peer, not the edge):
	// only internal clients may force a trace with x-envoy-force-trace.
	Internal bool
	Scheme   string // "http" or "https", for http.url
}

// Active is a started span; Finish ends it. A nil *Active is a request that is not traced.
type Active struct {
	t        *Tracer
	span     Span
	sampled  bool
	disabled bool
	maxPath  int
	scheme   string
	custom   []Attr
	// formatted are the custom tags formatted from the finished request (their places in
	// custom), with the request's headers.
	formatted []int
	tags      []CustomTag // the listener's, in custom's order
	h         http.Header
}

// Start makes the tracing decision for a request whose headers (x-request-id set) are
// about to be sent upstream, and when it is traced, or the request carries a parent span
// context, starts a span and writes its context into h for the next hop. It returns nil
// when no span is made; h is then left as it was except for the trace reason packed into
// x-request-id.
func (t *Tracer) Start(h http.Header, o StartOptions) *Active {
	if t == nil || o.Settings == nil {
		return nil
	}
	id := http1.Value(h, "X-Request-Id")
	a, packed := t.StartRequest(id, h, o.Settings, o)
	if packed != id {
		h["X-Request-Id"] = []string{packed}
	}
	return a
}

// StartRequest is Start for the request whose x-request-id is id, which it does not
// write into h: it returns the id with the trace reason packed in, for the caller to
// send. s stands for o.Settings (taken apart so that a caller's Settings on its stack
// stays there). A request that is not traced and continues no trace costs the decision
// and no allocation; only a span's context is written into h.
func (t *Tracer) StartRequest(id string, h http.Header, s *Settings, o StartOptions) (*Active, string) {
	if t == nil || s == nil {
		return nil, id
	}
	var reason Reason
	if s.IgnoreRequestID {
		reason = Sampled
	} else {
		reason, id = DecideID(id, h, s.Sampling, o.Internal)
	}
	sampled := reason.Traced()
	if !sampled && !hasParent(h) {
		return nil, id // the common unsampled request: no header parsed beyond presence
	}
	parent := Extract(h)
	if parent.HasSampled {
		// A decision made upstream of this hop is followed, as Envoy's OpenTelemetry and
		// Zipkin tracers do, so a trace is never cut in the middle.
		sampled = parent.Sampled
	}
	if !sampled && !parent.Valid() {
		return nil, id
	}
	a := &Active{t: t, sampled: sampled, disabled: s.Disabled, maxPath: s.MaxPathTagLength, scheme: o.Scheme}
	a.span = Span{Name: o.Operation, Kind: o.Kind, SpanID: newSpanID(), Start: t.now()}
	if parent.Valid() {
		a.span.TraceID, a.span.Parent, a.span.TraceState = parent.TraceID, parent.SpanID, parent.TraceState
	} else {
		a.span.TraceID = newTraceID()
	}
	for i := range s.CustomTags {
		ct := &s.CustomTags[i]
		if ct.Format != nil { // known when the request ends (Finish)
			a.formatted, a.tags, a.h = append(a.formatted, len(a.custom)), s.CustomTags, h
		}
		a.custom = append(a.custom, Attr{ct.Name, tagValue(ct, h)})
	}
	Inject(h, SpanContext{TraceID: a.span.TraceID, SpanID: a.span.SpanID, Sampled: sampled, HasSampled: true,
		Debug: parent.Debug, TraceState: parent.TraceState}, a.span.Parent)
	return a, id
}

// hasParent reports whether h carries any propagation header Extract reads.
func hasParent(h http.Header) bool {
	return len(h["Traceparent"]) > 0 || len(h["B3"]) > 0 || len(h["X-B3-Traceid"]) > 0
}

// Rename sets the span's name (the route's decorator operation, known once the request
// is routed); "" keeps the name it has.
func (a *Active) Rename(operation string) {
	if a != nil && operation != "" {
		a.span.Name = operation
	}
}

// Sampled reports whether the span will be exported.
func (a *Active) Sampled() bool { return a != nil && a.sampled && !a.disabled }

// Context is the span's own context (what the next hop sees as its parent).
func (a *Active) Context() SpanContext {
	if a == nil {
		return SpanContext{}
	}
	return SpanContext{TraceID: a.span.TraceID, SpanID: a.span.SpanID, Sampled: a.sampled, HasSampled: true}
}

// Finish ends the span with the request's record and queues it for export when sampled.
// It never blocks.
func (a *Active) Finish(info *streaminfo.Info) {
	if !a.Sampled() {
		return
	}
	s := a.span
	s.End = s.Start.Add(info.Duration)
	if !info.Start.IsZero() {
		s.Start = info.Start
		s.End = info.Start.Add(info.Duration)
	}
	if s.Name == "" {
		s.Name = info.Authority + "/*"
	}
	for _, i := range a.formatted { // custom and tags have the same places
		a.custom[i].Value = accesslog.TagValue(a.tags[i].Format, info, a.h)
	}
	s.Attrs = attributes(&a.t.node, info, a.scheme, a.maxPath, a.custom)
	s.Error = isError(info)
	a.t.out.Add(&s)
}
