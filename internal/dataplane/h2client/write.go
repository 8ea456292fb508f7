package h2client

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"

	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
)

// reqHead is what checkRequest worked out about a request's header block.
type reqHead struct {
	method, authority, scheme, path, protocol string
	query                                     string // with hasQuery: :path is path?query
	hasQuery                                  bool
	contentLength                             int64 // -1 when not sent
	trailers                                  bool  // req.Trailer set: sent after the body
	extConnect                                bool  // RFC 8441 extended CONNECT
	connect                                   bool  // plain CONNECT: :method and :authority only
	userAgent                                 bool  // add net/http's default User-Agent
}

// checkRequest validates req before any of it is encoded (HPACK state is the
// connection's: a header rejected halfway would corrupt it).
func checkRequest(req *http.Request) (reqHead, error) {
	var h reqHead
	if req.URL == nil {
		return h, errors.New("http2: request has no URL")
	}
	h.method = req.Method
	if h.method == "" {
		h.method = http.MethodGet
	}
	if !httpguts.ValidHeaderFieldName(h.method) {
		return h, fmt.Errorf("http2: invalid method %q", h.method)
	}
	h.authority = req.Host
	if h.authority == "" {
		h.authority = req.URL.Host
	}
	if !httpguts.ValidHostHeader(h.authority) {
		return h, fmt.Errorf("http2: invalid Host %q", h.authority)
	}
	if h.method == http.MethodConnect {
		if p := req.Header[":protocol"]; len(p) > 0 && p[0] != "" {
			h.protocol, h.extConnect = p[0], true
		} else {
			h.connect = true
		}
	}
	if !h.connect {
		h.scheme = req.URL.Scheme
		if h.scheme == "" {
			h.scheme = "http"
		}
		h.path, h.query, h.hasQuery = splitRequestURI(req.URL)
		if !validPath(h.path) {
			if req.URL.Opaque == "" {
				return h, fmt.Errorf("http2: invalid request path %q", h.path)
			}
			h.path = strings.TrimPrefix(h.path, req.URL.Scheme+"://"+h.authority)
			if !validPath(h.path) {
				return h, fmt.Errorf("http2: invalid request path %q from URL.Opaque", req.URL.Opaque)
			}
		}
	}
	h.userAgent = true // unless the request has one
	for k, vv := range req.Header {
		if strings.HasPrefix(k, ":") {
			continue
		}
		if !http1.ValidName(k) {
			return h, fmt.Errorf("http2: invalid header field name %q", k)
		}
		for _, v := range vv {
			if !http1.ValidValueString(v) {
				return h, fmt.Errorf("http2: invalid header field value for %q", k) // not the value: it may be a secret
			}
		}
		if k == "User-Agent" {
			h.userAgent = false
		}
	}
	for k := range req.Trailer {
		if !httpguts.ValidHeaderFieldName(k) {
			return h, fmt.Errorf("http2: invalid trailer name %q", k)
		}
		h.trailers = true
	}
	cl := int64(0)
	if req.Body != nil && req.Body != http.NoBody {
		cl = req.ContentLength
		if cl == 0 {
			cl = -1
		}
	}
	h.contentLength = -1
	if cl > 0 || (cl == 0 && (h.method == http.MethodPost || h.method == http.MethodPut || h.method == http.MethodPatch)) {
		h.contentLength = cl
	}
	return h, nil
}

func validPath(p string) bool { return (len(p) > 0 && p[0] == '/') || p == "*" }

// splitRequestURI is u.RequestURI() as path, query and whether "?query" follows: the
// caller writes :path from the parts, so a request with a query allocates no joined
// string. URLs that are not a plain path with a query (opaque, "*") come whole in path.
func splitRequestURI(u *url.URL) (path, query string, hasQuery bool) {
	if u.Opaque != "" || (!u.ForceQuery && u.RawQuery == "") {
		return u.RequestURI(), "", false
	}
	noQuery := *u
	noQuery.RawQuery, noQuery.ForceQuery = "", false
	if path = noQuery.RequestURI(); path == "*" {
		return u.RequestURI(), "", false
	}
	return path, u.RawQuery, true
}

// dropped are the connection-specific fields HTTP/2 forbids (RFC 9113 §8.2.2) and those
// RoundTrip writes itself.
var dropped = map[string]bool{
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true, "Transfer-Encoding": true,
	"Upgrade": true, "Host": true, "Content-Length": true,
}

// writeHeaders encodes and writes the request's HEADERS (and CONTINUATIONs). Called with
// wmu held.
func (cc *ClientConn) writeHeaders(id uint32, req *http.Request, h reqHead, endStream bool, maxFrame uint32) error {
	enc := cc.henc
	enc.Begin()
	field := enc.WriteField
	field(":authority", h.authority)
	field(":method", h.method)
	if !h.connect {
		if h.extConnect {
			field(":protocol", h.protocol)
		}
		if h.hasQuery {
			enc.WriteFieldParts(":path", h.path, "?", h.query)
		} else {
			field(":path", h.path)
		}
		field(":scheme", h.scheme)
	}
	if h.trailers {
		keys := make([]string, 0, len(req.Trailer))
		for k := range req.Trailer {
			keys = append(keys, lower(k))
		}
		sort.Strings(keys)
		field("trailer", strings.Join(keys, ","))
	}
	for k, vv := range req.Header {
		name := cc.fieldName(k)
		if name == "" {
			continue
		}
		if name == "te" {
			for _, v := range vv {
				if http1.EqualFoldASCII(v, "trailers") {
					field("te", "trailers")
					break
				}
			}
			continue
		}
		if name == "user-agent" && len(vv) > 0 && vv[0] == "" {
			continue // an empty User-Agent: none, as net/http
		}
		for _, v := range vv {
			field(name, v)
		}
	}
	if h.contentLength >= 0 {
		enc.WriteFieldInt("content-length", h.contentLength)
	}
	if h.userAgent {
		field("user-agent", "Go-http-client/2.0")
	}
	return writeBlock(cc.fr, id, enc.Bytes(), endStream, maxFrame)
}

// writeBlock writes a header block as HEADERS and CONTINUATION frames of at most maxFrame.
func writeBlock(fr *http2.Framer, id uint32, block []byte, endStream bool, maxFrame uint32) error {
	first := true
	for len(block) > 0 || first {
		chunk := block
		if uint32(len(chunk)) > maxFrame {
			chunk = chunk[:maxFrame]
		}
		block = block[len(chunk):]
		var err error
		if first {
			err = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: chunk, EndStream: endStream, EndHeaders: len(block) == 0})
			first = false
		} else {
			err = fr.WriteContinuation(id, len(block) == 0, chunk)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// writeData writes data as DATA frames of at most maxFrame; end marks the last one.
func writeData(fr *http2.Framer, id uint32, data []byte, end bool, maxFrame uint32) error {
	for {
		chunk := data
		if uint32(len(chunk)) > maxFrame {
			chunk = chunk[:maxFrame]
		}
		data = data[len(chunk):]
		if err := fr.WriteData(id, end && len(data) == 0, chunk); err != nil {
			return err
		}
		if len(data) == 0 {
			return nil
		}
	}
}

// fieldName is the HTTP/2 name of the request field k, "" for a field RoundTrip does not
// send as it is (dropped, pseudo-fields). The names a connection's requests use are
// remembered: one lookup per field instead of two, and no lowercase copy made again for
// a name outside http1's table (LowerName). Called with wmu held.
func (cc *ClientConn) fieldName(k string) string {
	if n, ok := cc.names[k]; ok {
		return n
	}
	n := ""
	if !dropped[k] && !strings.HasPrefix(k, ":") {
		n = lower(k)
	}
	if len(cc.names) < namesMax && len(k) <= nameKeptMax {
		if cc.names == nil {
			cc.names = make(map[string]string)
		}
		cc.names[k] = n
	}
	return n
}

// namesMax bounds a connection's remembered field names (fieldName), nameKeptMax the
// length of one: a longer name (a client may send names of tens of KiB) is not kept alive
// with the connection.
const (
	namesMax    = 128
	nameKeptMax = 64
)

// lower is the HTTP/2 field name of a canonical header key.
func lower(k string) string {
	if l, ok := http1.LowerName(k); ok {
		return l
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(k)
		}
	}
	return k
}

// writeBody sends the request body that did not go with the HEADERS: prefix (already
// read; its buffer pbuf goes back to the pool), then what body yields, then END_STREAM or
// the trailers. It runs on its own goroutine and closes body.
func (st *stream) writeBody(prefix []byte, pbuf *[]byte, body io.ReadCloser, h reqHead) {
	cc := st.cc
	defer func() { // the last touch of st: from here Recycle may reuse it
		cc.mu.Lock()
		st.writing = false
		cc.mu.Unlock()
	}()
	err := func() error {
		if len(prefix) > 0 {
			end := body == nil && !h.trailers
			if err := st.sendData(prefix, end); err != nil {
				return err
			}
			if end {
				return nil
			}
		}
		if pbuf != nil {
			bufPool.Put(pbuf)
			pbuf = nil
		}
		if body == nil {
			return st.sendEnd()
		}
		bp := bufPool.Get().(*[]byte)
		defer bufPool.Put(bp)
		buf := *bp
		want := st.req.ContentLength
		if want <= 0 || h.extConnect {
			want = -1
		}
		var sent int64
		for {
			n, rerr := body.Read(buf)
			if want >= 0 && sent+int64(n) > want {
				return errors.New("http2: request body longer than its Content-Length")
			}
			sent += int64(n)
			if rerr == io.EOF && want >= 0 && sent < want {
				// Checked before anything goes with END_STREAM: the stream is reset instead.
				return errors.New("http2: request body shorter than its Content-Length")
			}
			last := rerr == io.EOF || (want >= 0 && sent == want)
			if n > 0 || (last && !h.trailers) {
				if err := st.sendData(buf[:n], last && !h.trailers); err != nil {
					return err
				}
			}
			if last {
				if h.trailers {
					return st.sendTrailers()
				}
				return nil
			}
			if rerr != nil {
				return fmt.Errorf("http2: reading the request body: %w", rerr)
			}
		}
	}()
	if pbuf != nil {
		bufPool.Put(pbuf)
	}
	st.abortBody()
	if err == nil {
		return
	}
	cc.mu.Lock()
	stopped := st.reset || st.removed || cc.closed // the stream ended first: nothing to report
	if !stopped {
		st.failLocked(err)
	}
	cc.mu.Unlock()
	if !stopped {
		st.finish(http2.ErrCodeCancel)
	}
}

// sendData sends data within the flow-control windows, waiting for them to open.
func (st *stream) sendData(data []byte, end bool) error {
	cc := st.cc
	for {
		cc.mu.Lock()
		var n int64
		for {
			if st.reset || st.removed || cc.closed {
				err := st.err
				if err == nil {
					err = cc.err
				}
				cc.mu.Unlock()
				if err == nil {
					err = ErrClosed
				}
				return err
			}
			if len(data) == 0 {
				break // END_STREAM alone takes no window
			}
			n = min(int64(len(data)), st.sendWindow, cc.connSend, int64(cc.peerMaxFrame))
			if n > 0 {
				break
			}
			cc.cond.Wait()
		}
		st.sendWindow -= n
		cc.connSend -= n
		last := end && int(n) == len(data)
		if last {
			st.sentEnd = true
		}
		closed := last && st.recvEnd && !st.removed
		if closed {
			cc.removeLocked(st)
		}
		ended := closed && cc.endedLocked()
		cc.mu.Unlock()
		chunk := data[:n]
		if err := cc.writeFrames(func(fr *http2.Framer) error { return fr.WriteData(st.id, last, chunk) }); err != nil {
			return err
		}
		cc.streamsChanged(closed, ended)
		data = data[n:]
		if len(data) == 0 {
			return nil
		}
	}
}

// sendEnd sends an empty DATA frame with END_STREAM.
func (st *stream) sendEnd() error { return st.sendData(nil, true) }

// sendTrailers sends the request trailers (read now, after the body) with END_STREAM.
func (st *stream) sendTrailers() error {
	cc := st.cc
	cc.mu.Lock()
	if st.reset || st.removed || cc.closed {
		cc.mu.Unlock()
		return ErrClosed
	}
	st.sentEnd = true
	closed := st.recvEnd && !st.removed
	if closed {
		cc.removeLocked(st)
	}
	ended := closed && cc.endedLocked()
	cc.mu.Unlock()
	err := cc.writeFrames(func(fr *http2.Framer) error {
		cc.henc.Begin()
		for k, vv := range st.req.Trailer {
			if !httpguts.ValidHeaderFieldName(k) {
				continue
			}
			name := lower(k)
			for _, v := range vv {
				if httpguts.ValidHeaderFieldValue(v) {
					cc.henc.WriteField(name, v)
				}
			}
		}
		return writeBlock(fr, st.id, cc.henc.Bytes(), true, cc.peerMaxFrameLocked())
	})
	if err != nil {
		return err
	}
	cc.streamsChanged(closed, ended)
	return nil
}

// streamsChanged runs, without mu, after a stream may have left the connection: the pool
// is told when one did (its state hook), and a connection that GOAWAY left without
// streams (endedLocked, read under mu) is closed.
func (cc *ClientConn) streamsChanged(closed, ended bool) {
	if closed {
		cc.hook()
	}
	if ended {
		cc.flushPending()
		cc.closeLocked(cc.goAway, false)
	}
}

// flushPending writes the frames writers left in bw for a flush that is still to come
// (flushSoon) before the connection is closed on purpose: the last stream's END_STREAM,
// trailers or RST_STREAM. The write may not block the close for long.
func (cc *ClientConn) flushPending() {
	cc.wmu.Lock()
	if cc.bw.Buffered() > 0 {
		_ = cc.nc.SetWriteDeadline(time.Now().Add(time.Second))
		_ = cc.bw.Flush()
	}
	cc.wmu.Unlock()
}

// peerMaxFrameLocked reads the server's frame size limit.
func (cc *ClientConn) peerMaxFrameLocked() uint32 {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.peerMaxFrame
}
