package forward

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/bufpool"
	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
	"github.com/lucid-mesh/lucid/internal/dataplane/peermeta"
	"github.com/lucid-mesh/lucid/internal/dataplane/pool"
	"github.com/lucid-mesh/lucid/internal/dataplane/reqctx"
	"github.com/lucid-mesh/lucid/internal/dataplane/route"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// respond sends the upstream response downstream: status, headers (hop-by-hop removed,
// x-envoy-upstream-service-time added, header operations applied), the body streamed with
// a flush after every write, and trailers.
//
// ctx is the route's context (its timeout), a the attempt that got resp.
func (x *exchange) respond(ctx context.Context, a *attempt, resp *http.Response) {
	defer resp.Body.Close()
	a.track(resp) // stream.go: a stream on a removed host ends after the grace period
	defer a.untrack()
	info := x.info
	ust := a.serviceTime()
	info.UpstreamServiceTime = ust
	info.ResponseCode = resp.StatusCode
	info.ResponseCodeDetails = "via_upstream"

	owner := pool.Recycler(resp)
	var h http.Header // nil when the writer took the answer's fields without a map
	seen := onAnswer.Load()
	deferred := seen != nil && pool.HeaderDeferred(resp) // before responseHeader builds the map
	adopted := x.adoptFields(resp, owner, ust)
	if !adopted {
		h = x.responseHeader(resp, owner, ust)
	}
	if seen != nil {
		(*seen)(deferred, adopted)
	}
	x.w.WriteHeader(resp.StatusCode)

	rc := http.NewResponseController(x.w)
	// The pool's own bodies are passed on from where they lie in its read buffer (no copy
	// out first); others are read into a buffer.
	pk, _ := resp.Body.(bodyPeeker)
	var buf []byte
	if pk == nil || !pk.Peekable() {
		pk = nil
		bp := copyBufs.Get(resp.ContentLength) // most answers are small: a small buffer
		defer copyBufs.Put(bp)
		buf = (*bp)[:cap(*bp)]
	}
	// A body whose announced length has all arrived is not flushed: the end of the handler
	// sends it with the end of the stream (HTTP/2: one DATA frame with END_STREAM instead
	// of a DATA frame and an empty one; a write and a scheduler hop saved per response).
	// Announced trailers keep every flush, as they may come much later.
	complete := func() bool {
		return resp.ContentLength >= 0 && info.BytesSent >= resp.ContentLength && len(resp.Trailer) == 0
	}
	for {
		var chunk []byte
		var rerr error
		if pk != nil {
			chunk, rerr = pk.PeekBody(32 << 10)
		} else {
			var n int
			n, rerr = resp.Body.Read(buf)
			chunk = buf[:n]
		}
		if n := len(chunk); n > 0 {
			if _, werr := x.w.Write(chunk); werr != nil {
				info.BytesSent += int64(n)
				x.downstreamGone()
				return
			}
			if pk != nil {
				pk.SkipBody(n) // written (a Write keeps nothing of it): the pool's again
			}
			info.BytesSent += int64(n)
			if !complete() {
				if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
					x.downstreamGone()
					return
				}
			}
		}
		if rerr == io.EOF { //nolint:errorlint // Read's and PeekBody's own end: a wrapped EOF is a failure
			break
		}
		if rerr != nil {
			x.upstreamFailedMidResponse(ctx, a.ctx, rerr)
			return
		}
	}

	// Trailers: those announced before the body and those that only arrived (gRPC over
	// HTTP/2 never announces them) are both sent with TrailerPrefix.
	if len(resp.Trailer) > 0 { // most answers have none: no walk, no lookup
		if h == nil {
			h = x.w.Header() // not an answer adoptFields takes; for safety
		}
		for k, vv := range resp.Trailer {
			h[http.TrailerPrefix+k] = vv
		}
		if g := http1.Value(resp.Trailer, "Grpc-Status"); g != "" {
			info.GRPCStatus = g
		}
	}
	x.delivered = true
	// HTTP/1.x: a complete answer goes out now, in the one write it would have taken at the
	// end of the handler, so that the record, the observers and the release (finish) run
	// after the client has it rather than before. Only with its Content-Length among the
	// fields: without one, the server would chunk what it sends before the handler ends
	// (an HTTP/2 upstream's empty answer has a length of 0 and no field). Not HTTP/2,
	// where the end of the handler puts END_STREAM on the last DATA frame.
	if x.r.ProtoMajor == 1 && complete() && (h == nil || len(h["Content-Length"]) > 0) { // adopted: it has one
		if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
			x.downstreamGone()
		}
	}
}

// responseHeader makes the downstream response's header map from the upstream answer's:
// hop-by-hop fields removed, x-envoy-upstream-service-time (ust) added, then ext_authz's
// response headers, the route's header operations and the metadata exchange. adoptFields
// takes the answers none of these would change: an operation added here must be one of
// its conditions too.
func (x *exchange) responseHeader(resp *http.Response, owner interface{ Recycle() }, ust time.Duration) http.Header {
	info := x.info
	pool.FillHeader(resp) // the answer's map, when the pool left it to be built (FieldsAsker)
	if l, ok := owner.(hopLister); ok {
		removeHopFields(resp.Header, l.HopFields(), false) // a delete each, no walk
	} else {
		removeHopHeaders(resp.Header, false)
	}
	if g := http1.Value(resp.Header, "Grpc-Status"); g != "" {
		info.GRPCStatus = g
	}
	// The upstream's fields become the downstream response's: its map itself when the
	// writer can take it (h1server, h2server: no copy, no map to grow), else copied. The
	// writer recycles the pool's memory of the response, map included, once it has
	// written the head, if release (release.go) tells it the request is over.
	var h http.Header
	var ustValue []string
	if a, ok := x.w.(headerAdopter); ok && a.AdoptHeader(resp.Header, owner) {
		h = resp.Header
		if s, ok := owner.(pool.ValueSlotter); ok {
			ustValue = s.ValueSlot() // recycled with the map, once the head is written
		}
	} else {
		h = x.w.Header()
		for k, vv := range resp.Header {
			h[k] = vv
		}
	}
	for k := range resp.Trailer {
		h.Add("Trailer", k)
	}
	// The answer's own slot, or a slice of its own; not one of x.vals: the writer may
	// encode the head after Serve returned and the exchange was reused (release.go).
	if ustValue == nil {
		ustValue = make([]string, 1)
	}
	ustValue[0] = strconv.FormatInt(ust.Milliseconds(), 10)
	h["X-Envoy-Upstream-Service-Time"] = ustValue
	x.authzResponseHeaders(h) // authz.go: ext_authz's response headers
	if x.wc != nil {
		route.ApplyHeaders(h, x.wc.ResponseHeadersToAdd, x.wc.ResponseHeadersToRemove)
	}
	route.ApplyHeaders(h, x.rt.ResponseHeadersToAdd, x.rt.ResponseHeadersToRemove)
	x.exchangeResponseMetadata(h) // peermeta.go
	return h
}

// adoptFields passes a plain answer's fields on as they were received, with the proxy's
// own added, without a header map (h1server's AdoptFields), when nothing would change
// them: no hop-by-hop field, no peer metadata, no trailer, no header operation of the
// route or of ext_authz, no hash-policy cookie to set (run adds it to the answer's map),
// and none of the fields the proxy sets itself (x-envoy-upstream-service-time), which the
// writer would otherwise send twice. It does what responseHeader would for such an answer: notes its
// grpc-status, adds x-envoy-upstream-service-time and, inbound, this workload's metadata.
// false, with nothing done, for any other answer or writer.
func (x *exchange) adoptFields(resp *http.Response, owner interface{ Recycle() }, ust time.Duration) bool {
	if len(resp.Trailer) > 0 || !x.answerFieldsOnly() { // the conditions known before the answer
		return false
	}
	fa := x.w.(fieldsAdopter) // answerFieldsOnly checked it
	rl, ok := owner.(receivedLister)
	if !ok || len(rl.HopFields()) > 0 {
		return false
	}
	rf := rl.ReceivedFields()
	// The answer's map holds what the pool read, or nothing while it waits to be built.
	want := len(rf)
	if pool.HeaderDeferred(resp) {
		want = 0
	}
	if len(resp.Header) != want {
		return false // a field was added to the answer's map since it was read
	}
	grpcStatus := ""
	for i := range rf {
		switch rf[i].Key {
		case peermeta.HeaderMetadata, peermeta.HeaderID:
			return false // removed, and outbound read (responseHeader)
		case "X-Envoy-Upstream-Service-Time":
			return false // replaced by the proxy's own (an upstream that is a proxy sends one)
		case "Grpc-Status":
			if grpcStatus == "" {
				grpcStatus = rf[i].Value
			}
		}
	}
	if !fa.AdoptFields(rf, owner) {
		return false
	}
	if grpcStatus != "" {
		x.info.GRPCStatus = grpcStatus
	}
	// In the order the writer keeps them (by name): each goes at the end.
	if x.in.Direction == "inbound" && x.f.peerValue != nil {
		if x.f.peerClean {
			fa.AddCleanField(peermeta.HeaderMetadata, x.f.peerValue[0])
			fa.AddCleanField(peermeta.HeaderID, x.f.peerID[0])
		} else {
			fa.AddField(peermeta.HeaderMetadata, x.f.peerValue[0])
			fa.AddField(peermeta.HeaderID, x.f.peerID[0])
		}
	}
	fa.AddCleanField("X-Envoy-Upstream-Service-Time", strconv.FormatInt(ust.Milliseconds(), 10)) // digits
	return true
}

// responseHeaderOps reports whether anything configured changes the fields of the
// answers of this exchange: the route's or its weighted cluster's header operations, or
// the authorization server's response headers.
func (x *exchange) responseHeaderOps() bool {
	if x.authzDecision != nil && len(x.authzDecision.ResponseHeaders) > 0 {
		return true
	}
	if x.wc != nil && (len(x.wc.ResponseHeadersToAdd) > 0 || len(x.wc.ResponseHeadersToRemove) > 0) {
		return true
	}
	return len(x.rt.ResponseHeadersToAdd) > 0 || len(x.rt.ResponseHeadersToRemove) > 0
}

// onAnswer, when set (tests), learns for each answer sent downstream whether the pool gave
// it without a header map (deferred: pool.FieldsAsker) and whether its fields were adopted
// (adoptFields) or went through the header map.
var onAnswer atomic.Pointer[func(deferred, adopted bool)]

// receivedLister is an upstream answer that lists its fields as received and its
// hop-by-hop ones (the pool's plain answers).
type receivedLister interface {
	hopLister
	ReceivedFields() []http1.ReceivedField
}

// fieldsAdopter is a ResponseWriter that can take an upstream answer's fields as received,
// without a header map, and add the proxy's own to them (h1server's AdoptFields, AddField,
// and AddCleanField for a field known to need no check: a canonical name, a value with
// nothing to trim or replace).
type fieldsAdopter interface {
	AdoptFields(fields []http1.ReceivedField, owner interface{ Recycle() }) bool
	AddField(name, value string)
	AddCleanField(name, value string)
}

// bodyPeeker is an upstream body read where it lies (the pool's Content-Length bodies:
// pool.h1Body's PeekBody and SkipBody), when Peekable.
type bodyPeeker interface {
	Peekable() bool
	PeekBody(most int) ([]byte, error)
	SkipBody(n int)
}

// hopLister is an upstream answer that lists its hop-by-hop fields (the pool's plain
// answers: pool.plainResp.HopFields), all of them, as its header map still has them.
type hopLister interface{ HopFields() []string }

// headerAdopter is a ResponseWriter that can take a header map as its own, and recycle
// the memory it belongs to when it is done with it (h1server's and h2server's
// AdoptHeader).
type headerAdopter interface {
	AdoptHeader(h http.Header, owner interface{ Recycle() }) bool
}

// upstreamFailedMidResponse records why the upstream body ended early and resets the
// downstream stream (the status has been sent; Envoy resets too).
func (x *exchange) upstreamFailedMidResponse(ctx, actx context.Context, err error) {
	info := x.info
	switch {
	case x.bodyBroken():
		x.badBodyMidResponse() // downstream.go
		return
	case x.r.Context().Err() != nil:
		x.downstreamGone()
		return
	case errors.Is(reqctx.Cause(ctx), errRouteTimeout):
		info.Flags |= streaminfo.UpstreamRequestTimeout
		info.ResponseCodeDetails = "upstream_response_timeout"
		x.cl.Stats().UpstreamRqTimeout.Add(1)
	case errors.Is(reqctx.Cause(actx), errPerTryTimeout):
		info.Flags |= streaminfo.UpstreamRequestTimeout
		info.ResponseCodeDetails = "upstream_per_try_timeout"
		x.cl.Stats().UpstreamRqPerTryTimeout.Add(1)
	default:
		flag, reason, why := midStream(actx, err)
		info.Flags |= flag
		info.ResponseCodeDetails = "upstream_reset_after_response_started{" + underscores(reason) + "}"
		info.LucidError = LucidError(info.Flags, "upstream "+info.UpstreamHost+" (cluster "+
			info.UpstreamCluster+") failed after the response started: "+why)
		x.endStream()
		return
	}
	info.LucidError = LucidError(info.Flags, "upstream "+info.UpstreamHost+" (cluster "+
		info.UpstreamCluster+") failed after the response started: "+err.Error())
	x.endStream()
}

// copyBufs are the buffers bodies and pipes are copied with.
var copyBufs = bufpool.NewSized(32 << 10)
