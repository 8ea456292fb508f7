package http1

import (
	"net/http"
	"net/textproto"
)

// The usual field names in both their forms: lower case, as HTTP/2 sends them, and
// net/textproto's canonical key, as http.Header holds them. The HTTP/2 codecs (h2server,
// h2client) turn one form into the other by a lookup here, and the HTTP/1.1 parsers (the
// pool's, h1server's) find a name's key here, without making a copy for every message.

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

// CanonicalKey is net/textproto's canonical key of a field name that is not in that form
// already: the table's own string for a usual name, whatever its case, without a copy;
// else a new string (a name that is not a token comes back as it is, as textproto's).
func CanonicalKey[B ~string | ~[]byte](name B) string {
	var a [64]byte
	if len(name) > len(a) {
		return textproto.CanonicalMIMEHeaderKey(string(name))
	}
	b := a[:len(name)]
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	if k, ok := canonicalOf[string(b)]; ok {
		return k
	}
	if !ValidName(b) {
		return string(name)
	}
	upper := true
	for i, c := range b {
		if upper && 'a' <= c && c <= 'z' {
			b[i] = c - ('a' - 'A')
		}
		upper = c == '-'
	}
	return string(b)
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
		"sec-websocket-extensions", "sec-websocket-key", "pragma", "forwarded", "x-forwarded-host",
		"x-real-ip", "x-envoy-original-path",
	}
	canonical := make(map[string]string, len(names))
	lower := make(map[string]string, len(names))
	for _, l := range names {
		k := http.CanonicalHeaderKey(l)
		canonical[l], lower[k] = k, l
	}
	return canonical, lower
}()

// HopByHop says whether the canonical key k is a hop-by-hop field: one that describes a
// connection, not the message, and a proxy removes before passing the message on (RFC
// 9110 §7.6.1; the list net/http/httputil's reverse proxy removes). The fields a
// Connection field names are hop-by-hop too; the caller reads those from its value.
func HopByHop(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// FieldSet says which of a few field names a request's head had, as its parser saw them
// (h1server's, h2server's): the framing fields and the fields HTTP/2 forbids, which the
// parsers themselves read, and the ones a proxy reads from every request, so that a reader
// looks up only those the head had (in a small header map, looking up an absent name costs
// as much as finding a present one).
type FieldSet uint32

// The names of a FieldSet, each a bit.
const (
	FieldHost FieldSet = 1 << iota
	FieldConnection
	FieldTransferEncoding
	FieldContentLength
	FieldTrailer
	FieldExpect
	FieldUserAgent
	FieldXForwardedFor
	FieldXForwardedProto
	FieldXRequestID
	FieldXLucidHops
	FieldXEnvoyPeerMetadata
	FieldXForwardedClientCert
	FieldContentType
	FieldCookie
	FieldKeepAlive
	FieldProxyConnection
	FieldUpgrade
	FieldTE
)

// FieldsConnectionSpecific are the fields an HTTP/2 request must not have (RFC 9113
// 8.2.2; TE only with the value "trailers").
const FieldsConnectionSpecific = FieldConnection | FieldKeepAlive | FieldProxyConnection | FieldTransferEncoding | FieldUpgrade | FieldTE

// Lookup is h[k] when the set has f (k's bit, the canonical key k), else nil without a
// lookup.
func (s FieldSet) Lookup(h http.Header, k string, f FieldSet) []string {
	if s&f == 0 {
		return nil
	}
	return h[k]
}

// FieldOf is the FieldSet bit of the canonical key k; 0 for any other name.
func FieldOf(k string) FieldSet {
	switch k {
	case "Host":
		return FieldHost
	case "Connection":
		return FieldConnection
	case "Transfer-Encoding":
		return FieldTransferEncoding
	case "Content-Length":
		return FieldContentLength
	case "Trailer":
		return FieldTrailer
	case "Expect":
		return FieldExpect
	case "User-Agent":
		return FieldUserAgent
	case "X-Forwarded-For":
		return FieldXForwardedFor
	case "X-Forwarded-Proto":
		return FieldXForwardedProto
	case "X-Request-Id":
		return FieldXRequestID
	case "X-Lucid-Hops":
		return FieldXLucidHops
	case "X-Envoy-Peer-Metadata":
		return FieldXEnvoyPeerMetadata
	case "X-Forwarded-Client-Cert":
		return FieldXForwardedClientCert
	case "Content-Type":
		return FieldContentType
	case "Cookie":
		return FieldCookie
	case "Keep-Alive":
		return FieldKeepAlive
	case "Proxy-Connection":
		return FieldProxyConnection
	case "Upgrade":
		return FieldUpgrade
	case "Te":
		return FieldTE
	}
	return 0
}
