package forward

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
)

// gRPC-specific replies.
//
// A local reply to a gRPC request is, as in Envoy (Utility::sendLocalReply with is_grpc),
// a trailers-only response: HTTP 200, content-type application/grpc, grpc-status mapped
// from the HTTP status the reply would have had, and grpc-message carrying the body text
// (percent-encoded), with no body. The access log shows 200 with the flag (e.g. "200 UH").
// When an upstream fails after a gRPC response started, the stream ends with
// grpc-status UNAVAILABLE in trailers instead of a bare reset, so the client sees a status
// it retries rather than an opaque transport error.

// gRPC status codes used here.
const (
	grpcUnknown          = 2
	grpcPermissionDenied = 7
	grpcUnimplemented    = 12
	grpcInternal         = 13
	grpcUnavailable      = 14
	grpcUnauthenticated  = 16
)

// isGRPC says whether the downstream request is gRPC (content-type application/grpc...).
func (x *exchange) isGRPC() bool {
	ct := x.reqValue(http1.FieldContentType, "Content-Type")
	return strings.HasPrefix(ct, "application/grpc") && (len(ct) == len("application/grpc") || ct[len("application/grpc")] == '+' || ct[len("application/grpc")] == ';')
}

// httpToGRPCStatus is gRPC's HTTP-to-status mapping, which Envoy applies to local replies
// (Grpc::Utility::httpToGrpcStatus).
func httpToGRPCStatus(code int) int {
	switch code {
	case http.StatusBadRequest:
		return grpcInternal
	case http.StatusUnauthorized:
		return grpcUnauthenticated
	case http.StatusForbidden:
		return grpcPermissionDenied
	case http.StatusNotFound:
		return grpcUnimplemented
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return grpcUnavailable
	}
	return grpcUnknown
}

// writeGRPCLocal sends a local reply to a gRPC request in the trailers-only form and
// reports true; for other requests (or a reply already in gRPC form) it does nothing.
func (x *exchange) writeGRPCLocal(code int, body string) bool {
	if !x.isGRPC() || code == http.StatusOK {
		return false
	}
	st := httpToGRPCStatus(code)
	h := x.w.Header()
	h.Set("Content-Type", "application/grpc")
	h.Set("Grpc-Status", strconv.Itoa(st))
	if body != "" {
		h.Set("Grpc-Message", grpcPercentEncode(body))
	}
	x.info.GRPCStatus = strconv.Itoa(st)
	x.writeLocal(http.StatusOK, "")
	x.info.ResponseCode = http.StatusOK
	return true
}

// endStream ends a downstream response whose upstream failed after it started: gRPC
// requests get grpc-status UNAVAILABLE and the explanation in trailers; others are reset
// (HTTP/2 RST_STREAM, HTTP/1.1 connection closed).
func (x *exchange) endStream() {
	if !x.isGRPC() {
		x.abort = true
		return
	}
	h := x.w.Header()
	h.Set(http.TrailerPrefix+"Grpc-Status", strconv.Itoa(grpcUnavailable))
	h.Set(http.TrailerPrefix+"Grpc-Message", grpcPercentEncode(x.info.LucidError))
	h.Set(http.TrailerPrefix+"X-Lucid-Error", x.info.LucidError)
	x.info.GRPCStatus = strconv.Itoa(grpcUnavailable)
}

// grpcPercentEncode encodes a grpc-message as the gRPC spec asks: bytes outside
// printable ASCII, and '%', as %XX.
func grpcPercentEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '%' {
			const hex = "0123456789ABCDEF"
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
