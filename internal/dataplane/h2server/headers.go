package h2server

import (
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"

	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
	"github.com/lucid-mesh/lucid/internal/dataplane/requesturi"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
)

// processHeaders opens a stream (a request's HEADERS) or ends one (its trailers).
func (c *conn) processHeaders(f *headerBlock) error {
	id := f.StreamID
	if id%2 != 1 {
		return http2.ConnectionError(http2.ErrCodeProtocol) // RFC 9113 5.1.1: clients open odd streams
	}
	if st := c.streams[id]; st != nil {
		if st.remoteDone {
			return http2.StreamError{StreamID: id, Code: http2.ErrCodeStreamClosed}
		}
		return c.processTrailers(st, f)
	}
	if id <= c.maxID {
		return http2.ConnectionError(http2.ErrCodeProtocol) // RFC 9113 5.1.1: ids only grow
	}
	c.maxID = id
	if c.goingAway {
		return nil // after GOAWAY: not served, the client retries it elsewhere
	}
	if uint32(len(c.streams)) >= c.cfg.maxStreams {
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeRefusedStream}
	}
	if f.HasPriority() && f.Priority.StreamDep == id {
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
	}
	st, err := c.newStream(f)
	if err != nil {
		return err
	}
	c.streams[id] = st
	c.idleSince = 0
	c.s.work(st) // workers.go
	return nil
}

// processTrailers takes a request's trailers (HEADERS with END_STREAM after DATA).
func (c *conn) processTrailers(st *stream, f *headerBlock) error {
	if st.gotTrailers {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	st.gotTrailers = true
	if !f.StreamEnded() || len(f.PseudoFields()) > 0 {
		return http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol}
	}
	for _, hf := range f.RegularFields() {
		k := c.canonical(hf.Name)
		if !httpguts.ValidTrailerHeader(k) {
			return http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol}
		}
		if st.trailer != nil {
			st.trailer[k] = append(st.trailer[k], hf.Value)
		}
	}
	if st.declLen >= 0 && st.got != st.declLen {
		return http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol}
	}
	st.endRemoteLocked(nil)
	return nil
}

// newStream makes the stream and request of f, as net/http's HTTP/2 server reads them. A
// malformed request is a stream error; a header list over the limit gets a handler that
// answers 431, connection-specific fields one that answers 400.
func (c *conn) newStream(f *headerBlock) (*stream, error) {
	id := f.StreamID
	var method, scheme, authority, path, protocol string
	for _, hf := range f.PseudoFields() {
		switch hf.Name {
		case ":method":
			method = hf.Value
		case ":scheme":
			scheme = hf.Value
		case ":authority":
			authority = hf.Value
		case ":path":
			path = hf.Value
		case ":protocol":
			protocol = hf.Value
		}
	}
	bad := http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
	connect := method == http.MethodConnect
	if connect {
		if protocol == "" && (path != "" || scheme != "" || authority == "") {
			return nil, bad
		}
	} else if protocol != "" || method == "" || path == "" || (scheme != "https" && scheme != "http") {
		return nil, bad
	}

	st := spareStreams.Get().(*stream) // the memory of a finished stream, or a new one (stream.go)
	st.c, st.id, st.declLen = c, id, -1
	st.rcond.L = &c.mu
	st.recvWin = int64(c.cfg.streamWindow)
	st.sendWin = c.peerWin

	fields := f.RegularFields()
	h := st.h // empty (reset)
	if h == nil {
		h = make(http.Header, len(fields)+1)
		st.h = h
	}
	vals := st.vals[:]
	if len(fields) > len(vals) {
		vals = make([]string, len(fields))
	}
	// Each value is set without looking first: a name seldom repeats, and when one did
	// the map has fewer keys than the block has fields (below). The names the checks
	// after the loop look up are noted on the way (st.fields), so a head without them
	// costs no lookup.
	for i, hf := range fields {
		k := c.canonical(hf.Name)
		st.fields |= http1.FieldOf(k)
		vals[i] = hf.Value
		h[k] = vals[i : i+1 : i+1]
	}
	seen := st.fields
	if len(h) < len(fields) {
		http1.Regroup(h, vals[:len(fields)], func(i int) string { return c.canonical(fields[i].Name) })
	}
	if protocol != "" {
		h[":protocol"] = []string{protocol}
	}
	if httpguts.HeaderValuesContainsToken(seen.Lookup(h, "Expect", http1.FieldExpect), "100-continue") {
		st.needContinue = !f.StreamEnded()
		delete(h, "Expect")
	}
	if seen&http1.FieldCookie != 0 {
		if cookies := h["Cookie"]; len(cookies) > 1 {
			h["Cookie"] = []string{strings.Join(cookies, "; ")}
		}
	}
	var trailer http.Header
	if seen&http1.FieldTrailer != 0 {
		for _, v := range h["Trailer"] {
			for _, k := range strings.Split(v, ",") {
				k = textproto.CanonicalMIMEHeaderKey(textproto.TrimString(k))
				switch k {
				case "Transfer-Encoding", "Trailer", "Content-Length", "":
				default:
					if trailer == nil {
						trailer = http.Header{}
					}
					trailer[k] = nil
				}
			}
		}
		delete(h, "Trailer")
	}
	if seen&http1.FieldHost != 0 {
		if host := h["Host"]; len(host) == 1 {
			if authority == "" {
				authority = host[0]
			} else if host[0] != authority {
				return nil, bad
			}
			delete(h, "Host")
		} else if len(host) > 1 {
			return nil, bad
		}
	}
	if strings.IndexByte(authority, '@') >= 0 && (scheme == "http" || scheme == "https") {
		return nil, bad
	}
	if authority != "" && !httpguts.ValidHostHeader(authority) {
		return nil, bad
	}
	var u *url.URL
	uri := path
	if connect && protocol == "" {
		u = &url.URL{Host: authority}
		uri = authority
	} else {
		if path == "" || (path[0] != '/' && path != "*") {
			return nil, bad
		}
		var err error
		if u, err = requesturi.Parse(path, &st.url); err != nil {
			return nil, bad
		}
	}

	r := st.reqMem.Blank(&st.ctx) // the request lives in the stream
	r.Method, r.URL, r.Proto, r.ProtoMajor = method, u, "HTTP/2.0", 2
	r.Header, r.Host, r.RemoteAddr, r.RequestURI, r.Trailer = h, authority, c.remote, uri, trailer
	if scheme == "https" {
		r.TLS = c.tls
	}
	if f.StreamEnded() {
		st.remoteDone = true
		st.rerr = errEOF
		r.Body = http.NoBody
	} else {
		r.ContentLength = -1
		if vv := seen.Lookup(h, "Content-Length", http1.FieldContentLength); len(vv) > 0 {
			if n, err := strconv.ParseUint(vv[0], 10, 63); err == nil {
				r.ContentLength = int64(n)
			} else {
				r.ContentLength = 0
			}
			st.declLen = r.ContentLength
		}
		r.Body = (*requestBody)(st)
	}
	st.trailer = trailer
	st.req = r

	switch {
	case f.Truncated:
		st.handler = headerListTooLong
	case seen&http1.FieldsConnectionSpecific != 0 && hasConnectionFields(h):
		st.handler = badConnectionFields
	}
	// Last: a context hangs on the connection's until cancelled, so a refused head above
	// leaves nothing behind.
	st.ctx.Init(&c.ctx)
	return st, nil
}

// canonical is http.CanonicalHeaderKey of a field name, cached per connection.
func (c *conn) canonical(name string) string {
	if k, ok := http1.CanonicalName(name); ok {
		return k
	}
	if k, ok := c.canon[name]; ok {
		return k
	}
	k := http.CanonicalHeaderKey(name)
	if c.canon == nil {
		c.canon = map[string]string{}
	}
	if len(c.canon) < cacheMax {
		c.canon[name] = k
	}
	return k
}

// hasConnectionFields reports connection-specific fields, which HTTP/2 forbids (RFC 9113
// 8.2.2); net/http answers them 400.
func hasConnectionFields(h http.Header) bool {
	for _, k := range [...]string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade"} {
		if _, ok := h[k]; ok {
			return true
		}
	}
	te := h["Te"]
	return len(te) > 1 || (len(te) == 1 && te[0] != "trailers" && te[0] != "")
}

func headerListTooLong(w http.ResponseWriter, _ *http.Request) {
	const body = "<h1>HTTP Error 431</h1><p>Request Header Field(s) Too Large</p>"
	w.WriteHeader(http.StatusRequestHeaderFieldsTooLarge)
	_, _ = w.Write([]byte(body))
}

func badConnectionFields(w http.ResponseWriter, _ *http.Request) {
	http.Error(w, "request has connection-specific header fields, which HTTP/2 does not allow", http.StatusBadRequest)
}
