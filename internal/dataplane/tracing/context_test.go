package tracing

import (
	"net/http"
	"testing"
)

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func TestExtract(t *testing.T) {
	const tid, sid = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	for _, tc := range []struct {
		name    string
		h       http.Header
		valid   bool
		sampled bool
		hasSamp bool
		format  Format
		trace   string
	}{
		{"w3c sampled", hdr("traceparent", "00-"+tid+"-"+sid+"-01", "tracestate", "congo=t61rcWkgMzE"), true, true, true, FormatW3C, tid},
		{"w3c not sampled", hdr("traceparent", "00-"+tid+"-"+sid+"-00"), true, false, true, FormatW3C, tid},
		{"w3c future version with more fields", hdr("traceparent", "01-"+tid+"-"+sid+"-01-what-comes"), true, true, true, FormatW3C, tid},
		{"w3c version ff is invalid", hdr("traceparent", "ff-"+tid+"-"+sid+"-01"), false, false, false, FormatNone, ""},
		{"w3c upper case is invalid", hdr("traceparent", "00-4BF92F3577B34DA6A3CE929D0E0E4736-"+sid+"-01"), false, false, false, FormatNone, ""},
		{"w3c zero trace id", hdr("traceparent", "00-00000000000000000000000000000000-"+sid+"-01"), false, false, false, FormatNone, ""},
		{"w3c version 00 with extra", hdr("traceparent", "00-"+tid+"-"+sid+"-01-x"), false, false, false, FormatNone, ""},
		{"b3 single", hdr("b3", tid+"-"+sid+"-1-05e3ac9a4f6e3b90"), true, true, true, FormatB3Single, tid},
		{"b3 single, no state", hdr("b3", tid+"-"+sid), true, false, false, FormatB3Single, tid},
		{"b3 single debug", hdr("b3", tid+"-"+sid+"-d"), true, true, true, FormatB3Single, tid},
		{"b3 single deny only", hdr("b3", "0"), false, false, true, FormatB3Single, "00000000000000000000000000000000"},
		{"b3 multi 64-bit trace id", hdr("x-b3-traceid", "a3ce929d0e0e4736", "x-b3-spanid", sid, "x-b3-sampled", "1"), true, true, true, FormatB3Multiple, "0000000000000000a3ce929d0e0e4736"},
		{"b3 multi upper case", hdr("x-b3-traceid", "A3CE929D0E0E4736", "x-b3-spanid", sid), true, false, false, FormatB3Multiple, "0000000000000000a3ce929d0e0e4736"},
		{"b3 multi flags force", hdr("x-b3-traceid", tid, "x-b3-spanid", sid, "x-b3-sampled", "0", "x-b3-flags", "1"), true, true, true, FormatB3Multiple, tid},
		{"b3 multi bad sampled", hdr("x-b3-traceid", tid, "x-b3-spanid", sid, "x-b3-sampled", "maybe"), false, false, false, FormatNone, ""},
		{"w3c wins over b3", hdr("traceparent", "00-"+tid+"-"+sid+"-00", "x-b3-traceid", "a3ce929d0e0e4736", "x-b3-spanid", sid, "x-b3-sampled", "1"), true, false, true, FormatW3C, tid},
		{"bad w3c falls back to b3", hdr("traceparent", "garbage", "x-b3-traceid", tid, "x-b3-spanid", sid, "x-b3-sampled", "1"), true, true, true, FormatB3Multiple, tid},
		{"nothing", hdr(), false, false, false, FormatNone, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Extract(tc.h)
			if c.Valid() != tc.valid || c.Sampled != tc.sampled || c.HasSampled != tc.hasSamp || c.Format != tc.format {
				t.Fatalf("got %+v (valid %v), want valid %v sampled %v hasSampled %v format %v", c, c.Valid(), tc.valid, tc.sampled, tc.hasSamp, tc.format)
			}
			if tc.trace != "" && c.TraceID.String() != tc.trace {
				t.Fatalf("trace id %s, want %s", c.TraceID, tc.trace)
			}
		})
	}
}

func TestInjectThenExtract(t *testing.T) {
	c := SpanContext{TraceID: newTraceID(), SpanID: newSpanID(), Sampled: true, HasSampled: true, TraceState: "a=b"}
	parent := newSpanID()
	h := hdr("b3", "stale")
	Inject(h, c, parent)
	got := Extract(h)
	if got.TraceID != c.TraceID || got.SpanID != c.SpanID || !got.Sampled || got.TraceState != "a=b" || got.Format != FormatW3C {
		t.Fatalf("W3C: got %+v, want %+v", got, c)
	}
	h.Del("Traceparent")
	if got := Extract(h); got.TraceID != c.TraceID || got.SpanID != c.SpanID || !got.Sampled || got.Format != FormatB3Single {
		t.Fatalf("B3 single kept in step: got %+v (b3 %q)", got, h.Get("B3"))
	}
	h.Del("B3")
	if got := Extract(h); got.TraceID != c.TraceID || got.SpanID != c.SpanID || !got.Sampled || got.Format != FormatB3Multiple {
		t.Fatalf("B3 multi: got %+v", got)
	}
	if h.Get("X-B3-Parentspanid") != parent.String() {
		t.Fatalf("x-b3-parentspanid %q, want %s", h.Get("X-B3-Parentspanid"), parent)
	}
}

func FuzzExtract(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1", "a3ce929d0e0e4736", "00f067aa0ba902b7", "1")
	f.Add("", "d", "", "", "")
	f.Add("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xx", "", "", "", "")
	f.Fuzz(func(t *testing.T, tp, b3, tid, sid, sampled string) {
		c := Extract(hdr("traceparent", tp, "b3", b3, "x-b3-traceid", tid, "x-b3-spanid", sid, "x-b3-sampled", sampled))
		if c.Format != FormatNone && c.Format != FormatB3Single && !c.Valid() {
			t.Fatalf("format %v without valid ids: %+v", c.Format, c)
		}
		if c.Valid() {
			h := http.Header{}
			Inject(h, c, SpanID{})
			if got := Extract(h); got.TraceID != c.TraceID || got.SpanID != c.SpanID {
				t.Fatalf("re-injected context differs: %+v vs %+v", got, c)
			}
		}
	})
}
