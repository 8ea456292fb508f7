package forward

import (
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
	"github.com/lucid-mesh/lucid/internal/dataplane/reqctx"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/route"
)

// upstreamRequest is what every attempt (and mirror) of a request sends upstream,
// prepared once from the downstream request, which it does not change (only the tracer,
// adding its trace context, and the metadata exchange, removing its fields, do).
type upstreamRequest struct {
	header http.Header // hop-by-hop headers removed, forwarding headers set, header operations applied
	host   string      // Host, after the route's host rewrite
	path   *url.URL    // path and query, after the route's path rewrite
	body   *replayBody // the downstream body shared by the attempts; nil without one
}

// prepare builds the upstream request headers, path, host and body shared by all attempts.
func (x *exchange) prepare() {
	r := x.r
	edge := x.edge() // edge.go: use_remote_address
	// The downstream fields as they are, listed (uplist.go), or in a map of their own.
	if x.hdr == nil {
		x.hdr = make(http.Header)
	}
	x.up.header = x.hdr // empty (a reused exchange's, release.go)
	if edge || !x.listFields() {
		x.up.header = x.upstreamHeader(r.Header)
	}
	x.upAdd(http1.FieldXRequestID, "X-Request-Id", x.info.RequestID)
	if edge && x.in.RemoteAddr.IsValid() {
		h := x.upHeader()
		ip := x.in.RemoteAddr.Addr().Unmap().String()
		if prior := h.Values("X-Forwarded-For"); len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		x.setHeader(h, "X-Forwarded-For", ip)
	}
	// At the edge the connection decides, as Envoy does: a client cannot claim https over
	// plaintext. Inside the mesh the first hop's value is kept.
	if edge || x.lacks(http1.FieldXForwardedProto) || x.upGet("X-Forwarded-Proto") == "" {
		x.upAdd(http1.FieldXForwardedProto, "X-Forwarded-Proto", requestScheme(r))
	}
	x.forwardClientCert() // peer.go: the mutual-TLS peer, else none
	x.applyAuthz()        // authz.go: the JWT and the authorization server's headers
	if edge {
		x.cleanEdgeHeaders(x.upHeader()) // edge.go: no x-envoy-* header from outside the mesh goes on
	}
	x.markHop() // loop.go: x-lucid-hops

	orig := x.info.Path // computed by record for the same URL
	if r.URL != x.pathURL {
		orig = r.URL.RequestURI()
	}
	rewritten := route.RewritePath(&x.rt.Match, x.rt.Action, orig)
	x.up.path = r.URL
	if rewritten != orig {
		x.upSet("X-Envoy-Original-Path", orig)
		if u, err := url.ParseRequestURI(rewritten); err == nil {
			x.up.path = u
		}
	}

	x.up.host = r.Host
	switch {
	case x.wc != nil && x.wc.HostRewriteLiteral != "":
		x.up.host = x.wc.HostRewriteLiteral
	case x.rt.Action.HostRewriteLiteral != "":
		x.up.host = x.rt.Action.HostRewriteLiteral
	}

	// Header operations, most specific first: with overwrite, the less specific level wins
	// (Envoy's default, most_specific_header_mutations_wins false).
	if x.wc != nil {
		applyRequestHeaders(x, x.wc.RequestHeadersToAdd, x.wc.RequestHeadersToRemove)
	}
	applyRequestHeaders(x, x.rt.RequestHeadersToAdd, x.rt.RequestHeadersToRemove)
	applyRequestHeaders(x, x.vh.RequestHeadersToAdd, x.vh.RequestHeadersToRemove)

	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		x.up.body = newReplayBody(r.Body)
	}
}

// applyRequestHeaders applies one level's request header operations to the upstream
// request, in its header map: most routes have none, and their fields stay listed.
func applyRequestHeaders(x *exchange, add []resource.HeaderValueOption, remove []string) {
	if len(add) > 0 || len(remove) > 0 {
		route.ApplyHeaders(x.upHeader(), add, remove)
	}
}

// upstreamHeader is the downstream request's fields h as an upstream request carries
// them: h.Clone() without the hop-by-hop fields and those Connection names
// (removeHopHeaders, "te: trailers" kept), in one walk of h that also notes whether a
// field is an x-envoy-* one (x.envoyFields, for applyRetryHeaders). Never nil. Its values,
// up to len(x.hvals) of them, are slices of the exchange's array, in the exchange's own
// map (kept, emptied, when the exchange is reused): it usually costs no allocation. Each
// field's slice has its length as capacity, as Clone's, so appending copies.
func (x *exchange) upstreamHeader(h http.Header) http.Header {
	sv := x.hvals[:]
	h2 := x.hdr // a reused exchange's (release.go), or prepare's: empty
	if h2 == nil {
		h2 = make(http.Header, len(h))
		x.hdr = h2
	}
	var hv hopValues
	for k, vv := range h {
		if http1.HopByHop(k) {
			hv.note(k, vv)
			continue
		}
		if strings.HasPrefix(k, "X-Envoy-") {
			x.envoyFields = true
		}
		if vv == nil {
			h2[k] = nil // as Clone: a nil value stays nil
			continue
		}
		if len(vv) > len(sv) { // more values than x.hvals holds: a new array for the rest
			sv = make([]string, max(len(vv), len(x.hvals)))
		}
		n := copy(sv, vv)
		h2[k] = sv[:n:n]
		sv = sv[n:]
	}
	hv.removeOptions(h2, true)
	return h2
}

// setHeader sets the field k (canonical) of h to v, with a one-value slice of x.vals
// while it lasts: the fields the proxy sets on every request cost no allocation each.
// The slice's capacity is 1, so appending to it copies instead of overwriting a neighbour.
func (x *exchange) setHeader(h http.Header, k, v string) {
	if int(x.nvals) == len(x.vals) {
		h.Set(k, v)
		return
	}
	s := x.vals[x.nvals : x.nvals+1 : x.nvals+1]
	x.nvals++
	s[0] = v
	h[k] = s
}

// request is the upstream request of attempt a, with body (nil: none).
func (x *exchange) request(a *attempt, body io.ReadCloser) *http.Request {
	h := x.up.header
	if a.n > 1 { // each later attempt its own map, the fields no longer listed
		h = x.upHeader().Clone()
		if x.vh.IncludeAttemptCount {
			x.setHeader(h, "X-Envoy-Attempt-Count", itoa(int(a.n)))
		}
	} else if x.vh.IncludeAttemptCount {
		x.upSet("X-Envoy-Attempt-Count", itoa(int(a.n)))
	}
	hostHeader := x.up.host
	if x.rt.Action.AutoHostRewrite && a.host.Endpoint.Hostname != "" {
		hostHeader = a.host.Endpoint.Hostname
	}
	p := x.up.path
	path := url.URL{Path: p.Path, RawPath: p.RawPath, RawQuery: p.RawQuery, Opaque: p.Opaque}
	// The pool sets the URL's scheme and host: each request gets its own. The first
	// (the first attempt's) is the exchange's, with no copy to make for its context.
	if !x.firstUsed && a.rc == &x.firstCtx {
		x.firstUsed = true
		if x.firstReq == nil {
			x.firstReq = new(reqctx.Request)
		}
		x.firstURL = path
		req := x.firstReq.Blank(&x.firstCtx)
		x.fillRequest(req, &x.firstURL, h, hostHeader, body)
		return req
	}
	u := new(url.URL)
	*u = path
	var req http.Request // a value: WithContext below makes the one copy that escapes
	x.fillRequest(&req, u, h, hostHeader, body)
	return req.WithContext(a.ctx)
}

// fillRequest sets what an upstream request carries: the downstream request's method and
// version, URL u, header h, Host host and body (nil: none).
func (x *exchange) fillRequest(req *http.Request, u *url.URL, h http.Header, host string, body io.ReadCloser) {
	req.Method = x.r.Method
	req.URL = u
	req.Proto, req.ProtoMajor, req.ProtoMinor = "HTTP/1.1", x.r.ProtoMajor, x.r.ProtoMinor
	req.Header = h
	req.Host = host
	if body != nil {
		req.Body = body
		req.ContentLength = x.r.ContentLength
		if len(x.r.Trailer) > 0 {
			req.Trailer = x.r.Trailer
		}
	} else {
		req.Body = http.NoBody
	}
}
