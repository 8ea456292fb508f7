package http1

import "net/http"

// The usual field names in both their forms: lower case, as HTTP/2 sends them, and
// net/textproto's canonical key, as http.Header holds them. The HTTP/2 codecs (h2server,
// h2client) turn one form into the other by a lookup here, without making a copy for every
// message.

// CanonicalName is the canonical key of a usual lower-case field name ("content-type" →
// "Content-Type"); false for a name that is not in the table.
func CanonicalName(lower string) (string, bool) {
	k, ok := canonicalOf[lower]
	return k, ok
}

// LowerName is the lower-case form of a usual canonical key ("Content-Type" →
// "content-type"); false for a key that is not in the table.
func LowerName(canonical string) (string, bool) {
	l, ok := lowerOf[canonical]
	return l, ok
}

var canonicalOf, lowerOf = func() (map[string]string, map[string]string) {
	names := []string{
		"accept", "accept-charset", "accept-encoding", "accept-language", "accept-ranges",
		"age", "access-control-allow-credentials", "access-control-allow-headers",
		"access-control-allow-methods", "access-control-allow-origin", "access-control-expose-headers",
		"access-control-max-age", "access-control-request-headers", "access-control-request-method",
		"allow", "alt-svc", "authorization", "cache-control", "content-disposition", "content-encoding",
		"content-language", "content-length", "content-location", "content-range", "content-type",
		"cookie", "date", "etag", "expect", "expires", "from", "host", "if-match",
		"if-modified-since", "if-none-match", "if-range", "if-unmodified-since", "last-modified", "link",
		"location", "max-forwards", "origin", "proxy-authenticate", "proxy-authorization",
		"range", "referer", "refresh", "retry-after", "server", "set-cookie",
		"strict-transport-security", "te", "trailer", "transfer-encoding", "user-agent", "vary",
		"via", "www-authenticate", "x-forwarded-for", "x-forwarded-proto", "x-request-id",
		"x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "x-envoy-attempt-count",
		"x-envoy-expected-rq-timeout-ms", "x-envoy-peer-metadata", "x-envoy-peer-metadata-id",
		"x-envoy-decorator-operation", "x-envoy-upstream-service-time",
		"x-forwarded-client-cert", "traceparent", "tracestate", "grpc-timeout", "grpc-encoding",
		"grpc-accept-encoding", "grpc-status", "grpc-message", "connection", "keep-alive",
		"proxy-connection", "upgrade", "sec-websocket-version", "sec-websocket-protocol",
		"sec-websocket-extensions",
	}
	canonical := make(map[string]string, len(names))
	lower := make(map[string]string, len(names))
	for _, l := range names {
		k := http.CanonicalHeaderKey(l)
		canonical[l], lower[k] = k, l
	}
	return canonical, lower
}()
