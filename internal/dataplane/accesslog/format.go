package accesslog

import (
	"bytes"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// startTimeLayout is how Envoy prints %START_TIME% by default: UTC, milliseconds.
const startTimeLayout = "2006-01-02T15:04:05.000Z"

// appendText writes Istio's default TEXT line plus Lucid's trailing field.
func appendText(b *bytes.Buffer, in *streaminfo.Info) {
	b.WriteByte('[')
	writeStart(b, in.Start)
	b.WriteString(`] "`)
	b.WriteString(dash(in.Method))
	b.WriteByte(' ')
	b.WriteString(dash(in.Path))
	b.WriteByte(' ')
	b.WriteString(dash(in.Protocol))
	b.WriteString(`" `)
	writeInt(b, int64(in.ResponseCode))
	b.WriteByte(' ')
	b.Write(in.Flags.AppendTo(b.AvailableBuffer()))
	b.WriteByte(' ')
	b.WriteString(dash(in.ResponseCodeDetails))
	b.WriteByte(' ')
	b.WriteString(dash(in.ConnectionTerminationDetails))
	b.WriteString(` "`)
	b.WriteString(dash(in.UpstreamTransportFailureReason))
	b.WriteString(`" `)
	writeInt(b, in.BytesReceived)
	b.WriteByte(' ')
	writeInt(b, in.BytesSent)
	b.WriteByte(' ')
	writeInt(b, in.Duration.Milliseconds())
	b.WriteByte(' ')
	if ms, ok := upstreamServiceTime(in); ok {
		writeInt(b, ms)
	} else {
		b.WriteByte('-')
	}
	for _, s := range []string{in.ForwardedFor, in.UserAgent, in.RequestID, in.Authority, in.UpstreamHost} {
		b.WriteString(` "`)
		b.WriteString(dash(s))
		b.WriteByte('"')
	}
	b.WriteByte(' ')
	b.WriteString(dash(in.UpstreamCluster))
	b.WriteByte(' ')
	b.WriteString(dash(in.UpstreamLocalAddress))
	b.WriteByte(' ')
	writeAddr(b, in.DownstreamLocalAddress)
	b.WriteByte(' ')
	writeAddr(b, in.DownstreamRemoteAddress)
	b.WriteByte(' ')
	b.WriteString(dash(in.RequestedServerName))
	b.WriteByte(' ')
	b.WriteString(dash(in.RouteName))
	// Lucid's field: LucidError and the notes that are not empty, joined with "; "; none
	// when all are empty.
	open := false
	for i := -1; i < len(in.Notes); i++ {
		part := in.LucidError
		if i >= 0 {
			part = in.Notes[i]
		}
		if part == "" {
			continue
		}
		if open {
			b.WriteString("; ")
		} else {
			b.WriteString(` "lucid=`)
			open = true
		}
		writeEscaped(b, part)
	}
	if open {
		b.WriteByte('"')
	}
	b.WriteByte('\n')
}

// upstreamServiceTime is %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% in ms. It is unset when
// UpstreamServiceTime < 0, or when it is zero and no upstream host was used (a zero Info
// and local replies never reached an upstream, so Envoy sent no such header).
func upstreamServiceTime(in *streaminfo.Info) (int64, bool) {
	if in.UpstreamServiceTime < 0 || (in.UpstreamServiceTime == 0 && in.UpstreamHost == "") {
		return 0, false
	}
	return in.UpstreamServiceTime.Milliseconds(), true
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func writeStart(b *bytes.Buffer, t time.Time) {
	if t.IsZero() {
		b.WriteByte('-')
		return
	}
	b.Write(t.UTC().AppendFormat(b.AvailableBuffer(), startTimeLayout))
}

// writeInt writes v in decimal.
func writeInt(b *bytes.Buffer, v int64) {
	b.Write(strconv.AppendInt(b.AvailableBuffer(), v, 10))
}

func writeAddr(b *bytes.Buffer, a netip.AddrPort) {
	if !a.IsValid() {
		b.WriteByte('-')
		return
	}
	b.Write(a.AppendTo(b.AvailableBuffer()))
}

// writeEscaped writes s for a double-quoted TEXT field: `"` and `\` get a backslash,
// control characters become \n, \r, \t or \xHH.
func writeEscaped(b *bytes.Buffer, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case c < 0x20 || c == 0x7f:
			b.WriteString(`\x`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
		default:
			b.WriteByte(c)
		}
	}
}

const hex = "0123456789abcdef"

// appendJSON writes one JSON object with Istio's keys (EnvoyJSONLogFormatIstio), in
// sorted key order like Envoy prints them. Unset values are null; response_code,
// bytes_received, bytes_sent and duration are numbers; upstream_service_time is the
// header's string, as Envoy's %RESP()% gives it.
func appendJSON(b *bytes.Buffer, in *streaminfo.Info) {
	w := jsonWriter{b: b}
	b.WriteByte('{')
	w.str("authority", in.Authority)
	w.num("bytes_received", in.BytesReceived)
	w.num("bytes_sent", in.BytesSent)
	w.str("connection_termination_details", in.ConnectionTerminationDetails)
	w.addr("downstream_local_address", in.DownstreamLocalAddress)
	w.addr("downstream_remote_address", in.DownstreamRemoteAddress)
	w.num("duration", in.Duration.Milliseconds())
	if in.LucidError != "" {
		w.str("lucid_error", in.LucidError)
	}
	if len(in.Notes) > 0 {
		w.key("lucid_notes")
		b.WriteByte('[')
		for i, n := range in.Notes {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(b, n)
		}
		b.WriteByte(']')
	}
	w.str("method", in.Method)
	w.str("path", in.Path)
	w.str("protocol", in.Protocol)
	w.str("request_id", in.RequestID)
	w.str("requested_server_name", in.RequestedServerName)
	w.num("response_code", int64(in.ResponseCode))
	w.str("response_code_details", in.ResponseCodeDetails)
	w.str("response_flags", in.Flags.String())
	w.str("route_name", in.RouteName)
	w.key("start_time")
	if in.Start.IsZero() {
		b.WriteString("null")
	} else {
		b.WriteByte('"')
		writeStart(b, in.Start)
		b.WriteByte('"')
	}
	w.str("upstream_cluster", in.UpstreamCluster)
	w.str("upstream_host", in.UpstreamHost)
	w.str("upstream_local_address", in.UpstreamLocalAddress)
	w.key("upstream_service_time")
	if ms, ok := upstreamServiceTime(in); ok {
		b.WriteByte('"')
		writeInt(b, ms)
		b.WriteByte('"')
	} else {
		b.WriteString("null")
	}
	w.str("upstream_transport_failure_reason", in.UpstreamTransportFailureReason)
	w.str("user_agent", in.UserAgent)
	w.str("x_forwarded_for", in.ForwardedFor)
	b.WriteString("}\n")
}

type jsonWriter struct {
	b     *bytes.Buffer
	comma bool
}

func (w *jsonWriter) key(k string) {
	if w.comma {
		w.b.WriteByte(',')
	}
	w.comma = true
	w.b.WriteByte('"')
	w.b.WriteString(k)
	w.b.WriteString(`":`)
}

// str writes a string value, or null for "".
func (w *jsonWriter) str(k, v string) {
	w.key(k)
	if v == "" {
		w.b.WriteString("null")
		return
	}
	writeJSONString(w.b, v)
}

func (w *jsonWriter) num(k string, v int64) {
	w.key(k)
	writeInt(w.b, v)
}

func (w *jsonWriter) addr(k string, a netip.AddrPort) {
	w.key(k)
	if !a.IsValid() {
		w.b.WriteString("null")
		return
	}
	w.b.WriteByte('"')
	w.b.Write(a.AppendTo(w.b.AvailableBuffer()))
	w.b.WriteByte('"')
}

// writeJSONString writes s as a JSON string; invalid UTF-8 becomes U+FFFD.
func writeJSONString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case c == '\n':
				b.WriteString(`\n`)
			case c == '\r':
				b.WriteString(`\r`)
			case c == '\t':
				b.WriteString(`\t`)
			case c < 0x20:
				b.WriteString(`\u00`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&0xf])
			default:
				b.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteString(`\ufffd`)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	b.WriteByte('"')
}
