package pool

import (
	"net"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
)

// ConnObserver learns which upstream connection carries a request: forward records its
// local address for the access log (%UPSTREAM_LOCAL_ADDRESS%). RoundTrip calls the one it
// is given once it has a connection for the request (HTTP/1.1 and HTTP/2), with the
// connection's local address ("ip:port", worked out once per connection; "" when it is
// not TCP). UpstreamConn may run on a transport goroutine.
//
// It replaces an httptrace.ClientTrace GotConn hook on the hot path: with net/http's
// HTTP/2 client (LUCID_HTTP2_CLIENT=nethttp) the pool installs its own ClientTrace for
// every request, and httptrace composes two traces through reflection (reflect.MakeFunc
// and a reflective call per request), which cost more than a tenth of a sidecar's CPU
// under h2c load. Given to RoundTrip rather than as a context value, it costs no
// allocation per request.
type ConnObserver interface {
	UpstreamConn(c net.Conn, local string)
}

// FieldsAsker is a ConnObserver that may ask for a plain answer's fields as a list only:
// when its FieldsOnly is true, a plain HTTP/1.1 answer with a body, at most 16 fields, no
// name twice and no hop-by-hop field comes with its header map empty, its fields in ReceivedFields, until
// FillHeader puts them there. forward asks when it would pass such an answer's fields on
// as received (h1server's AdoptFields), which needs no map; the caller then reads the
// answer's fields with FieldValue and calls FillHeader before anything that uses
// resp.Header. It saves building the map (and emptying it for the next answer).
type FieldsAsker interface{ FieldsOnly() bool }

// RequestLister is a ConnObserver whose request may carry its fields as a list rather
// than in its header map: when RequestFields is not nil, req.Header holds none of them,
// and an HTTP/1.1 connection writes them, in their order, ahead of whatever req.Header
// holds. forward lists a
// request's fields when nothing needs them in a map: it saves building the map, walking
// it to write it, and emptying it for the next request. Anything else that sends the
// request (the HTTP/2 client) first calls FillRequestHeader, which puts the fields into
// req.Header and makes RequestFields nil from then on. Listed fields never include Host,
// Content-Length, Transfer-Encoding, Trailer, a hop-by-hop field or an Idempotency-Key
// (Replayable reads the map), and their values hold no CR or LF.
type RequestLister interface {
	RequestFields() []http1.Field
	FillRequestHeader()
}

// Clock is a ConnObserver that shares clock readings with the HTTP/1.1 connections of the
// pool, so that a request reads the clock fewer times (a reading costs 50 – 90 ns in a VM,
// and a request took seven): Began is when the caller began the attempt, a moment before
// RoundTrip, which the pool takes as the time it looks at the idle list and starts the
// exchange; Answered tells the caller when the pool read the answer's head (forward's
// x-envoy-upstream-service-time ends there).
type Clock interface {
	Began() time.Time
	Answered(at time.Time)
}

// requestFields is obs's request's fields as a list, or nil when its header map holds
// them (RequestLister).
func requestFields(obs ConnObserver) []http1.Field {
	if rl, ok := obs.(RequestLister); ok {
		return rl.RequestFields()
	}
	return nil
}

// fillRequestHeader has obs put its request's listed fields into the request's header
// map, if it listed them (RequestLister).
func fillRequestHeader(obs ConnObserver) {
	if rl, ok := obs.(RequestLister); ok {
		rl.FillRequestHeader()
	}
}

// fieldsOnly is whether obs asks for answers' fields as a list only (FieldsAsker).
func fieldsOnly(obs ConnObserver) bool {
	fa, ok := obs.(FieldsAsker)
	return ok && fa.FieldsOnly()
}

// observe tells obs, if any, the connection c with local address local.
func observe(obs ConnObserver, c net.Conn, local string) {
	if obs != nil && c != nil {
		obs.UpstreamConn(c, local)
	}
}

// LocalAddress is c's local address as ConnObserver reports it: "ip:port" for TCP, else "".
func LocalAddress(c net.Conn) string {
	if ta, ok := c.LocalAddr().(*net.TCPAddr); ok {
		return ta.String()
	}
	return ""
}
