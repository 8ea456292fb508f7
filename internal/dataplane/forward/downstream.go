package forward

import (
	"errors"
	"net/http"

	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// Downstream protocol errors: what Envoy's HTTP/1 codec refuses (package http1 finds
// them) is answered here with Envoy's local reply, flag DPE, and the connection closes,
// as Envoy closes a connection after a codec error:
//
//   - a request head refused before it is served (Reject): 400, 426, 431 or 501, with
//     Envoy's reason phrase as the body and the codec's details (http1.headers_too_large,
//     http1.content_length_and_chunked_not_allowed, low_version, ...);
//   - a body whose framing breaks while it is forwarded (a chunk size that is not hex,
//     chunk data longer than its size): the upstream request is cut at once and the
//     client gets 400 http1.codec_error, or, when the response has started, its stream
//     is reset. Nothing stays open at any hop.

// errDownstreamBody is the cause an attempt is cut with when the downstream body broke.
var errDownstreamBody = errors.New("downstream request body framing broke")

// Reject answers a request the listener refused before serving it (rj, from package
// http1) with Envoy's local reply and flag DPE, and records it for the observers with the
// request line the client sent. The connection closes after the answer.
func (f *Forwarder) Reject(w http.ResponseWriter, r *http.Request, in Inbound, rj *http1.Rejection) {
	x := f.newExchange(w, r, in)
	defer x.finish()
	info := x.info
	// The stand-in request net/http served says nothing about the client's: the access
	// log gets what the client's request line said (Envoy logs "-" for what it did not read).
	info.Method, info.Path, info.Authority, info.UserAgent, info.ForwardedFor = rj.Method, rj.Target, "", "", ""
	if rj.Proto == "HTTP/1.0" {
		info.Protocol = rj.Proto
	}
	w.Header().Set("Connection", "close")
	x.reply(&Reply{Status: rj.Status, Flag: streaminfo.DownstreamProtocolError, Details: rj.Details,
		Body: rj.Body(), Explanation: rj.Reason})
}

// bodyBroken reports whether the downstream body failed while the client is still there:
// its framing broke (a client that went away cancels the request's context instead).
func (x *exchange) bodyBroken() bool {
	return x.up.body != nil && x.up.body.failed() != nil && x.r.Context().Err() == nil
}

// badBody answers a request whose body framing broke before the response started: 400
// DPE, and the connection closes.
func (x *exchange) badBody() {
	x.w.Header().Set("Connection", "close")
	x.reply(&Reply{Status: http.StatusBadRequest, Flag: streaminfo.DownstreamProtocolError,
		Details: http1.DetailsCodecError, Body: http.StatusText(http.StatusBadRequest),
		Explanation: "the request body's framing is broken: " + x.bodyFailure() + "; the upstream request was cut"})
}

// bodyFailure says what broke in the body: the connection's reader knows exactly, else
// net/http's error.
func (x *exchange) bodyFailure() string {
	if g := x.in.Checked; g != nil {
		if why := g.BodyError(); why != "" {
			return why
		}
	}
	if err := x.up.body.failed(); err != nil {
		return err.Error()
	}
	return "unknown"
}

// badBodyMidResponse records a body that broke after the response started: the
// downstream stream is reset (HTTP/1.1: the connection closes), as Envoy resets it.
func (x *exchange) badBodyMidResponse() {
	info := x.info
	info.Flags |= streaminfo.DownstreamProtocolError
	info.ResponseCodeDetails = http1.DetailsCodecError
	info.LucidError = LucidError(info.Flags, "the request body's framing broke after the response started: "+x.bodyFailure())
	x.endStream()
}

// cutOnBodyError gives the body view of attempt a the attempt's cancel function, so a
// body that breaks while the pool sends it ends the attempt at once (the upstream would
// otherwise wait for the rest of a body that never comes).
func cutOnBodyError(body any, cut func(error)) {
	if v, ok := body.(*bodyView); ok && cut != nil {
		v.cut = cut
	}
}
