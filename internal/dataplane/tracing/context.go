package tracing

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
)

// TraceID is a W3C trace id; the zero value is invalid.
type TraceID [16]byte

// SpanID is a W3C span (parent) id; the zero value is invalid.
type SpanID [8]byte

func (t TraceID) String() string { return hex.EncodeToString(t[:]) }
func (s SpanID) String() string  { return hex.EncodeToString(s[:]) }

// IsValid reports whether t is not all zeros.
func (t TraceID) IsValid() bool { return t != TraceID{} }

// IsValid reports whether s is not all zeros.
func (s SpanID) IsValid() bool { return s != SpanID{} }

// Format says which propagation header a span context came from.
type Format uint8

// The propagation formats Lucid reads, in the order it looks for them.
const (
	FormatNone       Format = iota
	FormatW3C               // traceparent (+ tracestate)
	FormatB3Single          // b3: {TraceId}-{SpanId}-{SamplingState}-{ParentSpanId}
	FormatB3Multiple        // x-b3-traceid, x-b3-spanid, x-b3-sampled, x-b3-flags
)

// SpanContext is what a parent hands to its children across a hop.
type SpanContext struct {
	TraceID TraceID
	SpanID  SpanID
	// Sampled is the parent's decision; HasSampled is false when the parent left it to
	// the receiver (B3 without a sampling state).
	Sampled, HasSampled bool
	// Debug is B3's x-b3-flags: 1 (force sampling).
	Debug      bool
	TraceState string // W3C tracestate, passed on unchanged
	Format     Format
}

// Valid reports whether the context has both identifiers.
func (c SpanContext) Valid() bool { return c.TraceID.IsValid() && c.SpanID.IsValid() }

// Extract reads the parent span context from request headers: W3C traceparent first, then
// B3 single header, then B3 multiple headers. A malformed header is ignored (the request
// starts a new trace), as Envoy's tracers do.
func Extract(h http.Header) SpanContext {
	if v := http1.Value(h, "Traceparent"); v != "" {
		if c, ok := parseTraceparent(v); ok {
			c.TraceState = strings.Join(h.Values("Tracestate"), ",")
			return c
		}
	}
	if v := http1.Value(h, "B3"); v != "" {
		if c, ok := parseB3Single(v); ok {
			return c
		}
	}
	if v := http1.Value(h, "X-B3-Traceid"); v != "" {
		if c, ok := parseB3Multi(v, http1.Value(h, "X-B3-Spanid"), http1.Value(h, "X-B3-Sampled"), http1.Value(h, "X-B3-Flags")); ok {
			return c
		}
	}
	return SpanContext{}
}

// parseTraceparent reads version 00 (and, as the spec asks, the first four fields of a
// higher version): "00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>".
func parseTraceparent(v string) (SpanContext, bool) {
	v = strings.TrimSpace(v)
	if len(v) < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return SpanContext{}, false
	}
	ver, ok := hexByte(v[0:2])
	if !ok || ver == 0xff || (ver == 0 && len(v) != 55) || (ver > 0 && len(v) > 55 && v[55] != '-') {
		return SpanContext{}, false
	}
	var c SpanContext
	if !decodeLowerHex(c.TraceID[:], v[3:35]) || !decodeLowerHex(c.SpanID[:], v[36:52]) || !c.Valid() {
		return SpanContext{}, false
	}
	flags, ok := hexByte(v[53:55])
	if !ok {
		return SpanContext{}, false
	}
	c.Sampled, c.HasSampled, c.Format = flags&1 == 1, true, FormatW3C
	return c, true
}

// parseB3Single reads "b3: {TraceId}-{SpanId}[-{SamplingState}[-{ParentSpanId}]]"; a bare
// sampling state ("0", "1", "d") carries a decision and no identifiers: it is returned with
// no ids and only the decision.
func parseB3Single(v string) (SpanContext, bool) {
	parts := strings.Split(strings.TrimSpace(v), "-")
	if len(parts) == 1 {
		c := SpanContext{Format: FormatB3Single}
		return c, applyB3State(&c, parts[0])
	}
	if len(parts) > 4 {
		return SpanContext{}, false
	}
	c, ok := parseB3IDs(parts[0], parts[1])
	if !ok {
		return SpanContext{}, false
	}
	c.Format = FormatB3Single
	if len(parts) >= 3 && !applyB3State(&c, parts[2]) {
		return SpanContext{}, false
	}
	return c, true
}

func parseB3Multi(traceID, spanID, sampled, flags string) (SpanContext, bool) {
	c, ok := parseB3IDs(traceID, spanID)
	if !ok {
		return SpanContext{}, false
	}
	c.Format = FormatB3Multiple
	switch strings.ToLower(strings.TrimSpace(sampled)) {
	case "":
	case "1", "true":
		c.Sampled, c.HasSampled = true, true
	case "0", "false":
		c.HasSampled = true
	default:
		return SpanContext{}, false
	}
	if strings.TrimSpace(flags) == "1" {
		c.Debug, c.Sampled, c.HasSampled = true, true, true
	}
	return c, true
}

// parseB3IDs reads a 16 or 32 hex digit trace id (a 64-bit id is the low half) and a 16
// digit span id.
func parseB3IDs(traceID, spanID string) (SpanContext, bool) {
	var c SpanContext
	traceID, spanID = strings.ToLower(strings.TrimSpace(traceID)), strings.ToLower(strings.TrimSpace(spanID))
	switch len(traceID) {
	case 32:
		if !decodeLowerHex(c.TraceID[:], traceID) {
			return c, false
		}
	case 16:
		if !decodeLowerHex(c.TraceID[8:], traceID) {
			return c, false
		}
	default:
		return c, false
	}
	if len(spanID) != 16 || !decodeLowerHex(c.SpanID[:], spanID) || !c.Valid() {
		return SpanContext{}, false
	}
	return c, true
}

func applyB3State(c *SpanContext, s string) bool {
	switch s {
	case "1":
		c.Sampled, c.HasSampled = true, true
	case "0":
		c.HasSampled = true
	case "d":
		c.Sampled, c.HasSampled, c.Debug = true, true, true
	default:
		return false
	}
	return true
}

func hexByte(s string) (byte, bool) {
	var b [1]byte
	if !decodeLowerHex(b[:], s) {
		return 0, false
	}
	return b[0], true
}

// decodeLowerHex decodes exactly len(dst)*2 lower-case hex digits (W3C requires lower case;
// B3 ids are lowered by the caller).
func decodeLowerHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	_, err := hex.Decode(dst, []byte(s))
	return err == nil
}

// Inject writes the context of a span (trace id, its own span id, its decision) for the
// next hop, in W3C and B3 multi-header form (what Istio's proxies send), and keeps a B3
// single header in step when the request carried one. parent is the span's own parent
// (x-b3-parentspanid); zero leaves it out.
func Inject(h http.Header, c SpanContext, parent SpanID) {
	var buf [55]byte
	copy(buf[:], "00-")
	hex.Encode(buf[3:35], c.TraceID[:])
	buf[35] = '-'
	hex.Encode(buf[36:52], c.SpanID[:])
	buf[52] = '-'
	buf[53] = '0'
	buf[54] = '0'
	if c.Sampled {
		buf[54] = '1'
	}
	h["Traceparent"] = []string{string(buf[:])}
	if c.TraceState != "" {
		h["Tracestate"] = []string{c.TraceState}
	} else {
		delete(h, "Tracestate")
	}
	h["X-B3-Traceid"] = []string{c.TraceID.String()}
	h["X-B3-Spanid"] = []string{c.SpanID.String()}
	if parent.IsValid() {
		h["X-B3-Parentspanid"] = []string{parent.String()}
	} else {
		delete(h, "X-B3-Parentspanid")
	}
	sampled := "0"
	if c.Sampled {
		sampled = "1"
	}
	h["X-B3-Sampled"] = []string{sampled}
	if c.Debug {
		h["X-B3-Flags"] = []string{"1"}
	}
	if _, ok := h["B3"]; ok {
		v := c.TraceID.String() + "-" + c.SpanID.String() + "-" + sampled
		if c.Debug {
			v = c.TraceID.String() + "-" + c.SpanID.String() + "-d"
		}
		if parent.IsValid() {
			v += "-" + parent.String()
		}
		h["B3"] = []string{v}
	}
}

// newTraceID and newSpanID return random non-zero identifiers.
func newTraceID() TraceID {
	var t TraceID
	for !t.IsValid() {
		_, _ = rand.Read(t[:]) // crypto/rand.Read never fails (Go 1.24+)
	}
	return t
}

func newSpanID() SpanID {
	var s SpanID
	for !s.IsValid() {
		_, _ = rand.Read(s[:])
	}
	return s
}
