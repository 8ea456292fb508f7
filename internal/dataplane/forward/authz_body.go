package forward

import (
	"bytes"
	"io"
	"net/http"
	"strconv"

	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// defaultMaxCheckBody bounds the body buffered for an authorization server whose filter
// sets no max_request_bytes.
const defaultMaxCheckBody = 1 << 20

// checkBody buffers the start of the request body for an ext_authz filter that sends it
// (includeRequestBodyInCheck): at most maxBytes; the request goes on with the buffered
// bytes followed by the rest. A longer body is cut for the check when partial, else the
// request is refused as Envoy refuses it: 413 "Payload Too Large", details
// request_payload_too_large. ok is false when the request has been answered.
func (x *exchange) checkBody(maxBytes uint32, partial bool) (body []byte, ok bool) {
	r := x.r
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil, true
	}
	limit := int64(maxBytes)
	if limit <= 0 {
		limit = defaultMaxCheckBody
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		x.checkBodyFailed(err)
		return nil, false
	}
	over := int64(len(buf)) > limit
	if over && !partial {
		x.localReply(&Reply{Status: http.StatusRequestEntityTooLarge, Details: "request_payload_too_large", Body: "Payload Too Large",
			Explanation: "the request body is longer than the " + strconv.FormatInt(limit, 10) + " bytes the authorization server's check may carry " +
				"(the CUSTOM provider's includeRequestBodyInCheck.maxRequestBytes; allowPartialMessage is false)"}, nil)
		return nil, false
	}
	r2 := *r // a shallow copy sharing the rest of the body, as http.Request.WithContext makes
	r2.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}
	x.r = &r2
	if over {
		buf = buf[:limit]
	}
	return buf, true
}

// checkBodyFailed records a body that could not be read for the check: the client went
// away, or its framing broke (400 DPE, and the connection closes).
func (x *exchange) checkBodyFailed(err error) {
	if x.r.Context().Err() != nil {
		x.downstreamGone()
		return
	}
	why := err.Error()
	if g := x.in.Checked; g != nil && g.BodyError() != "" {
		why = g.BodyError()
	}
	x.w.Header().Set("Connection", "close")
	x.localReply(&Reply{Status: http.StatusBadRequest, Flag: streaminfo.DownstreamProtocolError, Details: http1.DetailsCodecError,
		Body: http.StatusText(http.StatusBadRequest), Explanation: "the request body's framing is broken (read for the authorization server's check): " + why}, nil)
}
