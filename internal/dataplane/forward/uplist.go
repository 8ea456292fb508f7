package forward

import (
	"net/http"
	"strings"

	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
)

// The upstream request's fields as a list (pool.RequestLister).
//
// Most requests reach the upstream with the fields they came with and a few the proxy
// adds (x-request-id, x-forwarded-proto). Copying the downstream header map into the
// upstream one, setting the proxy's fields in it and walking it to write it cost more
// than any other step of the request's way up, and a map writes its fields in a random
// order. When the downstream server says which fields the request came with, in their
// order (h1server's ReceivedRequest), and its header map still holds those and nothing
// else, prepare lists them instead: the proxy's own are set in the list, the pool writes
// the list as it is, and the upstream request's header map stays empty. Anything that
// needs the map (a header operation, a JWT's or an authorization server's headers, a
// mirror, a retry, an upgrade, an HTTP/2 upstream) calls upHeader, which puts the list into the
// map once; from then on the map holds the fields, as when they were never listed.

// maxListed is the most fields a list holds: the 16 a downstream head may list, and the
// proxy's own. A field set on a full list moves the fields into the map.
const maxListed = 28

// upList is an upstream request's fields in order (the exchange's; kept across reuses).
type upList struct {
	f [maxListed]http1.Field
	n int
}

// index is the position of key k (canonical) in l, or -1.
func (l *upList) index(k string) int {
	for i := range l.f[:l.n] {
		if len(l.f[i].Key) == len(k) && l.f[i].Key == k {
			return i
		}
	}
	return -1
}

// add puts k: v at the end of l; false when l is full.
func (l *upList) add(k, v string) bool {
	if l.n == len(l.f) {
		return false
	}
	l.f[l.n] = http1.Field{Key: k, Value: v}
	l.n++
	return true
}

// requestLister is a ResponseWriter whose server lists the request's fields as received
// (h1server's ReceivedRequest).
type requestLister interface {
	ReceivedRequest() []http1.ReceivedField
}

// listFields lists the downstream request's fields for the upstream request (x.list) when
// they can go up as they are, and says whether it did. They can when the downstream
// server listed them, the request's map holds exactly those, as received, and none is
// hop-by-hop but a "Connection: keep-alive" (the others' removal reads Connection's
// options) or an Idempotency-Key (the pool reads it in the map). Host (req.Host) and
// Content-Length (the framing) are the pool's to write: they are checked, not listed.
func (x *exchange) listFields() bool {
	rl, ok := x.w.(requestLister)
	if !ok {
		return false
	}
	rf := rl.ReceivedRequest()
	if len(rf) == 0 {
		return false
	}
	h := x.r.Header
	l := x.list
	if l == nil {
		l = new(upList)
		x.list = l
	}
	l.n = 0
	inMap := 0
	for i := range rf {
		f := &rf[i]
		k := f.Key
		switch k {
		case "Host":
			continue
		case "Content-Length":
			inMap++
			if !f.Received(k, h[k]) {
				return false
			}
			continue
		case "Connection":
			// "keep-alive" names no field but Keep-Alive, which would be hop-by-hop
			// itself: the field only goes, as any Connection field does.
			if !http1.EqualFoldASCII(f.Value, "keep-alive") {
				return false
			}
			inMap++
			if !f.Received(k, h[k]) {
				return false
			}
			continue
		case "Idempotency-Key", "X-Idempotency-Key":
			return false
		}
		if http1.HopByHop(k) || !f.Received(k, h[k]) {
			return false
		}
		if strings.HasPrefix(k, "X-Envoy-") {
			x.envoyFields = true
		}
		inMap++
		l.add(k, f.Value) // at most 16 received: never full
	}
	if len(h) != inMap {
		return false // the map has a field the head did not (the tracer's)
	}
	x.listed = true
	return true
}

// upHeader is the upstream request's header map, with the listed fields put into it
// first if they were listed: from then on the map holds them.
func (x *exchange) upHeader() http.Header {
	if x.listed {
		x.fillUpHeader()
	}
	return x.up.header
}

// fillUpHeader puts the listed fields into the upstream request's header map, each a
// one-value slice of the exchange's arrays while they last. Not inlined: few requests get
// here, and upHeader is called from many places.
//
//go:noinline
func (x *exchange) fillUpHeader() {
	x.listed = false
	h, l := x.up.header, x.list
	sv := x.hvals[:]
	for i := range l.f[:l.n] {
		if len(sv) == 0 {
			sv = make([]string, l.n-i)
		}
		sv[0] = l.f[i].Value
		h[l.f[i].Key] = sv[:1:1]
		sv = sv[1:]
	}
}

// upGet is the upstream request's first value of key k (canonical).
func (x *exchange) upGet(k string) string {
	if x.listed {
		if i := x.list.index(k); i >= 0 {
			return x.list.f[i].Value
		}
		return ""
	}
	return http1.Value(x.up.header, k)
}

// upSet sets the upstream request's field k (canonical) to v, which holds no CR or LF (a
// value the proxy makes, or one received): in place when the list has k, else at its end;
// in the map once the list is full.
func (x *exchange) upSet(k, v string) {
	if x.listed {
		l := x.list
		if i := l.index(k); i >= 0 {
			l.f[i].Value = v
			return
		}
		if l.add(k, v) {
			return
		}
		x.fillUpHeader()
	}
	x.setHeader(x.up.header, k, v)
}

// upAdd is upSet for a field the proxy sets once per request, f its http1.FieldOf bit:
// when the fields are listed and the downstream request had no such field, it goes at
// the end without a search.
func (x *exchange) upAdd(f http1.FieldSet, k, v string) {
	if x.listed && x.lacks(f) && x.list.add(k, v) {
		return
	}
	x.upSet(k, v)
}

// upDel removes the upstream request's field k (canonical); listed, the others keep their
// order.
func (x *exchange) upDel(k string) {
	if !x.listed {
		delete(x.up.header, k)
		return
	}
	l := x.list
	if i := l.index(k); i >= 0 {
		copy(l.f[i:l.n], l.f[i+1:l.n])
		l.n--
		l.f[l.n] = http1.Field{}
	}
}

// RequestFields is the upstream request's fields while they are listed (pool.RequestLister).
func (a *attempt) RequestFields() []http1.Field {
	x := a.x
	if !x.listed {
		return nil
	}
	return x.list.f[:x.list.n:x.list.n]
}

// FillRequestHeader puts the listed fields into the upstream request's header map
// (pool.RequestLister): the HTTP/2 client reads the map.
func (a *attempt) FillRequestHeader() {
	if a.x.listed {
		a.x.fillUpHeader()
	}
}
