// Package http1 reads HTTP/1.1 requests off a downstream connection before net/http does,
// with Envoy's codec rules, so that what net/http serves is exactly what Envoy would: a
// request Envoy rejects never reaches a handler, a request's framing is never read two
// ways (the smuggling forms of RFC 9112 §6.3), and a connection whose body framing breaks
// is answered and closed instead of hanging. It sits in front of the proxy's HTTP server:
//
//	socket (accept) → http1.Conn (strict head and framing) → h1server (or net/http.Server) → proxy → forward
//
// ParseHead is the request head parser (request line, header fields, the framing they
// announce); Conn runs it on every request of a connection and tracks the body's framing
// (Content-Length, chunked with trailers) to find the next head. A rejected head is handed
// to net/http as a harmless stand-in request that the proxy recognises (Conn.Rejection),
// so the reply (Envoy's status, body and details, with the response flag and
// x-lucid-error forward gives it) goes out in order, after any pipelined answer, and the
// connection closes. A body whose framing breaks mid-way is cut where net/http's own
// parser fails (the handler's body read fails; forward answers 400).
//
// The package decides nothing about replies: it reports what is wrong (Rejection).
package http1

import "net/http"

// Envoy's defaults for the limits (HttpConnectionManager max_request_headers_kb,
// common_http_protocol_options.max_headers_count).
const (
	DefaultMaxRequestHeadersKB = 60
	DefaultMaxHeadersCount     = 100
)

// Limits are a listener's request limits, as Envoy's HTTP connection manager applies them.
// The zero value is Envoy's defaults.
type Limits struct {
	// MaxRequestHeadersKB bounds the request line's URL plus every header name and value,
	// in KiB (max_request_headers_kb; 0: 60). Over it: 431, http1.headers_too_large.
	MaxRequestHeadersKB int
	// MaxHeadersCount bounds the number of header fields (max_headers_count; 0: 100).
	// Over it: 431, http1.too_many_headers.
	MaxHeadersCount int
	// AcceptHTTP10 serves HTTP/1.0 requests (http_protocol_options.accept_http_10);
	// without it they get 426 Upgrade Required, as Istio's proxies answer by default.
	AcceptHTTP10 bool
}

// HeaderBytes is the size limit in bytes.
func (l Limits) HeaderBytes() int {
	if l.MaxRequestHeadersKB <= 0 {
		return DefaultMaxRequestHeadersKB << 10
	}
	return l.MaxRequestHeadersKB << 10
}

// Headers is the count limit.
func (l Limits) Headers() int {
	if l.MaxHeadersCount <= 0 {
		return DefaultMaxHeadersCount
	}
	return l.MaxHeadersCount
}

// rawSlack is how many bytes of a head beyond HeaderBytes may be buffered (method,
// version, separators, whitespace) before the head is refused as too large without
// waiting for its end.
const rawSlack = 16 << 10

// Rejection is why a request is refused before it is served: Envoy's local reply (status,
// its reason phrase as the body, %RESPONSE_CODE_DETAILS%) and what exactly was wrong.
type Rejection struct {
	Status  int
	Details string // Envoy's response code details, e.g. "http1.headers_too_large"
	Reason  string // what was wrong, for x-lucid-error and the access log
	// What the request line said, for the access log ("" when it was not read).
	Method, Target, Proto string
}

// Body is Envoy's body for the reply: the status's reason phrase.
func (r *Rejection) Body() string { return http.StatusText(r.Status) }

// Envoy's details strings of the HTTP/1 codec (codec_impl.cc) and the connection manager.
const (
	DetailsCodecError        = "http1.codec_error"
	DetailsHeadersTooLarge   = "http1.headers_too_large"
	DetailsTooManyHeaders    = "http1.too_many_headers"
	DetailsInvalidCharacters = "http1.invalid_characters"
	DetailsInvalidURL        = "http1.invalid_url"
	DetailsInvalidTE         = "http1.invalid_transfer_encoding"
	DetailsChunkedCL         = "http1.content_length_and_chunked_not_allowed"
	DetailsBodyDisallowed    = "http1.body_disallowed"
	DetailsLowVersion        = "low_version"
	DetailsMissingHost       = "missing_host_header"
	DetailsInvalidAuthority  = "invalid_authority"
)

func reject(status int, details, reason string) *Rejection {
	return &Rejection{Status: status, Details: details, Reason: reason}
}

// DetailsHTTP2TooManyHeaders is Envoy's details for an HTTP/2 request over the header
// limits (its HTTP/2 codec).
const DetailsHTTP2TooManyHeaders = "http2.too_many_headers"

// CheckHTTP2 applies the header limits to an HTTP/2 request, whose frames net/http has
// already decoded: the path plus every header name and value (":authority" as the host)
// against the size limit, the fields (the authority included) against the count. nil:
// within both.
func CheckHTTP2(r *http.Request, lim Limits) *Rejection {
	size, count := len(r.URL.RequestURI())+len(":authority")+len(r.Host), 1
	for k, vv := range r.Header {
		for _, v := range vv {
			size += len(k) + len(v)
			count++
		}
	}
	var rj *Rejection
	switch {
	case size > lim.HeaderBytes():
		rj = reject(http.StatusRequestHeaderFieldsTooLarge, DetailsHTTP2TooManyHeaders,
			"request headers exceed max_request_headers_kb ("+itoa(lim.HeaderBytes()>>10)+" KiB of path, header names and values)")
	case count > lim.Headers():
		rj = reject(http.StatusRequestHeaderFieldsTooLarge, DetailsHTTP2TooManyHeaders,
			"more than max_headers_count ("+itoa(lim.Headers())+") header fields")
	default:
		return nil
	}
	rj.Method, rj.Target, rj.Proto = r.Method, r.URL.RequestURI(), "HTTP/2"
	return rj
}
