package accesslog

import (
	"bytes"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/lucid-mesh/lucid/internal/contract/logformat"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// A file access log's own format (the Telemetry API's envoyFileAccessLog.logFormat,
// resource.LogFormat): Envoy's command operators over the finished request, as text or
// as a JSON object. A value that is not known is "-" in text and null in JSON (a
// single operator; inside a longer string, "-"); a JSON value that is a single numeric
// operator (RESPONSE_CODE, BYTES_*, DURATION, UPSTREAM_REQUEST_ATTEMPT_COUNT) is a
// number. Lucid's trailing explanation is not added: the user chose the fields.

// LogWith writes info's line in format f; h are the downstream request's headers
// (%REQ()%; nil for a TCP connection). Like Log, it never fails the request.
func (l *Logger) LogWith(info *streaminfo.Info, h http.Header, f *resource.LogFormat) {
	if b := l.begin(); b != nil {
		appendCustom(b, info, h, f)
		l.end()
	}
}

// appendCustom writes the line of info in format f.
func appendCustom(b *bytes.Buffer, in *streaminfo.Info, h http.Header, f *resource.LogFormat) {
	if f.JSON == nil {
		for _, p := range f.Text {
			if p.Op == "" {
				b.WriteString(p.Literal)
				continue
			}
			v, ok := operator(p, in, h)
			if !ok {
				v = "-"
			}
			b.WriteString(v)
		}
		return
	}
	b.WriteByte('{')
	for i, fl := range f.JSON {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSONString(b, fl.Key)
		b.WriteByte(':')
		if len(fl.Value) == 1 && fl.Value[0].Op != "" {
			v, ok := operator(fl.Value[0], in, h)
			switch {
			case !ok:
				b.WriteString("null")
			case logformat.Single(fl.Value):
				b.WriteString(v)
			default:
				writeJSONString(b, v)
			}
			continue
		}
		var s strings.Builder
		for _, p := range fl.Value {
			if p.Op == "" {
				s.WriteString(p.Literal)
			} else if v, ok := operator(p, in, h); ok {
				s.WriteString(v)
			} else {
				s.WriteByte('-')
			}
		}
		writeJSONString(b, s.String())
	}
	b.WriteString("}\n")
}

// TagValue is parts formatted for the finished request as Envoy formats a tracing custom
// tag's value: what is not known is empty (not "-"). h are the downstream request's
// headers.
func TagValue(parts []logformat.Part, in *streaminfo.Info, h http.Header) string {
	var s strings.Builder
	for _, p := range parts {
		if p.Op == "" {
			s.WriteString(p.Literal)
		} else if v, ok := operator(p, in, h); ok {
			s.WriteString(v)
		}
	}
	return s.String()
}

// operator is p's value for the request; ok is false when it is not known.
func operator(p logformat.Part, in *streaminfo.Info, h http.Header) (string, bool) {
	v, ok := operatorValue(p, in, h)
	if p.Max > 0 && len(v) > p.Max {
		v = v[:p.Max]
	}
	return v, ok && v != ""
}

func operatorValue(p logformat.Part, in *streaminfo.Info, h http.Header) (string, bool) {
	switch p.Op {
	case "START_TIME":
		if in.Start.IsZero() {
			return "", false
		}
		return in.Start.UTC().Format(startTimeLayout), true
	case "PROTOCOL":
		return in.Protocol, true
	case "METHOD":
		return in.Method, true
	case "REQ":
		if v := requestHeader(p.Arg, in, h); v != "" || p.Alt == "" {
			return v, true
		}
		return requestHeader(p.Alt, in, h), true
	case "RESP": // only x-envoy-upstream-service-time (logformat.Parse)
		ms, ok := upstreamServiceTime(in)
		return strconv.FormatInt(ms, 10), ok
	case "RESPONSE_CODE":
		return strconv.Itoa(in.ResponseCode), true
	case "RESPONSE_FLAGS":
		return in.Flags.String(), true
	case "RESPONSE_CODE_DETAILS":
		return in.ResponseCodeDetails, true
	case "CONNECTION_TERMINATION_DETAILS":
		return in.ConnectionTerminationDetails, true
	case "UPSTREAM_TRANSPORT_FAILURE_REASON":
		return in.UpstreamTransportFailureReason, true
	case "BYTES_RECEIVED":
		return strconv.FormatInt(in.BytesReceived, 10), true
	case "BYTES_SENT":
		return strconv.FormatInt(in.BytesSent, 10), true
	case "DURATION":
		return strconv.FormatInt(in.Duration.Milliseconds(), 10), true
	case "UPSTREAM_REQUEST_ATTEMPT_COUNT":
		return strconv.Itoa(in.Attempts), true
	case "UPSTREAM_HOST":
		return in.UpstreamHost, true
	case "UPSTREAM_CLUSTER", "UPSTREAM_CLUSTER_RAW":
		return in.UpstreamCluster, true
	case "UPSTREAM_LOCAL_ADDRESS":
		return in.UpstreamLocalAddress, true
	case "DOWNSTREAM_LOCAL_ADDRESS":
		return addrString(in.DownstreamLocalAddress, true), true
	case "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT":
		return addrString(in.DownstreamLocalAddress, false), true
	case "DOWNSTREAM_REMOTE_ADDRESS":
		return addrString(in.DownstreamRemoteAddress, true), true
	case "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT":
		return addrString(in.DownstreamRemoteAddress, false), true
	case "REQUESTED_SERVER_NAME":
		return in.RequestedServerName, true
	case "ROUTE_NAME":
		return in.RouteName, true
	}
	return "", false
}

// requestHeader is a request header as %REQ()% reads it: the pseudo-headers and the
// headers the record keeps (the request id the proxy may have generated) from the
// record, any other from the downstream request's headers.
func requestHeader(name string, in *streaminfo.Info, h http.Header) string {
	switch strings.ToLower(name) {
	case ":method":
		return in.Method
	case ":path":
		return in.Path
	case ":authority", "host":
		return in.Authority
	case "x-request-id":
		return in.RequestID
	case "user-agent":
		return in.UserAgent
	case "x-forwarded-for":
		return in.ForwardedFor
	}
	if h == nil {
		return ""
	}
	return h.Get(name)
}

func addrString(a netip.AddrPort, port bool) string {
	switch {
	case !a.IsValid():
		return ""
	case port:
		return a.String()
	}
	return a.Addr().String()
}
