package accesslog

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/cel-go/interpreter"

	"github.com/lucid-mesh/lucid/internal/contract/celattr"
	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// attributes are Envoy's request attributes of one finished request, as a CEL filter
// (Telemetry accessLogging filter.expression) reads them. Each root map is built only when
// the expression names it, and only for requests a listener filters: a listener without a
// filter never gets here. The request map (its headers copied) is built once per
// attributes, however often an expression names it. Not safe for concurrent use.
type attributes struct {
	in      *streaminfo.Info
	h       http.Header // the downstream request's headers
	tcp     bool        // an opaque TCP connection: no request, no response code
	request map[string]any
}

var (
	_ interpreter.Activation = (*attributes)(nil)
	_ celattr.Bounded        = (*attributes)(nil)
)

// WithinBounds reports whether the request is within the sizes the expressions' cost
// estimate assumed (celattr.MaxHeaders headers, celattr.MaxValueSize bytes of them, of
// the path and of each other string the request gave), so that evaluating them needs no
// cost tracking: true for every request the proxy's default header limits let in. Allocates
// nothing.
func (a *attributes) WithinBounds() bool {
	if len(a.h) > celattr.MaxHeaders {
		return false
	}
	n := 0
	for k, vs := range a.h {
		n += len(k)
		for _, v := range vs {
			n += len(v) + 1
		}
	}
	in := a.in
	for _, l := range []int{n, len(in.Path), len(in.Authority), len(in.UserAgent), len(in.RequestID), len(in.ResponseCodeDetails), len(in.ConnectionTerminationDetails)} {
		if l > celattr.MaxValueSize {
			return false
		}
	}
	return true
}

// Parent is nil: every name is resolved here.
func (a *attributes) Parent() interpreter.Activation { return nil }

// ResolveName returns the map of a root attribute (celattr.Roots).
func (a *attributes) ResolveName(name string) (any, bool) {
	in := a.in
	if a.tcp && (name == "request" || name == "response") {
		return connAttributes(in, name)
	}
	switch name {
	case "request":
		if a.request != nil {
			return a.request, true
		}
		path, _, _ := strings.Cut(in.Path, "?")
		a.request = map[string]any{
			"path": in.Path, "url_path": path, "host": in.Authority, "method": in.Method,
			"scheme": scheme(a.h), "headers": headerMap(a.h), "referer": http1.Value(a.h, "Referer"),
			"useragent": in.UserAgent, "id": in.RequestID, "protocol": in.Protocol,
			"time": in.Start, "duration": in.Duration, "size": in.BytesReceived, "total_size": in.BytesReceived,
		}
		return a.request, true
	case "response":
		m := map[string]any{
			"code": int64(in.ResponseCode), "code_details": in.ResponseCodeDetails,
			"flags": EnvoyFlags(in.Flags), "size": in.BytesSent, "total_size": in.BytesSent,
			"headers": map[string]string{}, "trailers": map[string]string{},
		}
		if g, err := strconv.ParseInt(in.GRPCStatus, 10, 64); err == nil {
			m["grpc_status"] = g
		}
		return m, true
	case "connection":
		return map[string]any{
			// A peer's SPIFFE identity is known only from a verified client certificate.
			"mtls":                  in.MTLS || in.Direction == "inbound" && in.Source.Principal != "",
			"requested_server_name": in.RequestedServerName,
			"termination_details":   in.ConnectionTerminationDetails,
		}, true
	case "source":
		return addrMap(in.DownstreamRemoteAddress), true
	case "destination":
		return addrMap(in.DownstreamLocalAddress), true
	case "upstream":
		m := map[string]any{"transport_failure_reason": in.UpstreamTransportFailureReason,
			"local_address": in.UpstreamLocalAddress}
		if ap, err := netip.ParseAddrPort(in.UpstreamHost); err == nil {
			m["address"], m["port"] = in.UpstreamHost, int64(ap.Port())
		}
		return m, true
	case "xds":
		return map[string]any{"cluster_name": in.UpstreamCluster, "route_name": in.RouteName}, true
	}
	return nil, false
}

// connAttributes are the request and response roots of an opaque TCP connection, as
// Envoy's tcp_proxy gives them: no request (absent), a response of flags and bytes
// only; the other roots are a request's.
func connAttributes(in *streaminfo.Info, name string) (any, bool) {
	if name == "request" {
		return nil, false
	}
	m := map[string]any{"flags": EnvoyFlags(in.Flags), "size": in.BytesSent}
	if in.ResponseCodeDetails != "" {
		m["code_details"] = in.ResponseCodeDetails
	}
	return m, true
}

func addrMap(ap netip.AddrPort) map[string]any {
	if !ap.IsValid() {
		return map[string]any{}
	}
	return map[string]any{"address": ap.String(), "port": int64(ap.Port())}
}

// headerMap is the request's headers as Envoy's attributes give them: lower-case names,
// several values joined with ",".
func headerMap(h http.Header) map[string]string {
	m := make(map[string]string, len(h))
	for k, vs := range h {
		m[strings.ToLower(k)] = strings.Join(vs, ",")
	}
	return m
}

func scheme(h http.Header) string {
	if s := http1.Value(h, "X-Forwarded-Proto"); s != "" {
		return s
	}
	return "http"
}

// envoyBits are Envoy's bit for each of Lucid's flags (StreamInfo::CoreResponseFlag):
// Envoy has flags Lucid never sets (ResponseFromCacheFilter, DropOverLoad) between them,
// so the bits differ from streaminfo.Flag's from NoFilterConfigFound on.
var envoyBits = func() map[streaminfo.Flag]int64 {
	m := map[streaminfo.Flag]int64{}
	bit := 0
	for _, f := range streaminfo.AllFlags() {
		switch f.String() {
		case "NFCF", "DR":
			bit++ // after Envoy's ResponseFromCacheFilter (RFCF), DropOverLoad (DO)
		}
		m[f] = 1 << bit
		bit++
	}
	return m
}()

// EnvoyFlags is response.flags: the response flags as Envoy's bit vector.
func EnvoyFlags(f streaminfo.Flag) int64 {
	var out int64
	for fl, bit := range envoyBits {
		if f&fl != 0 {
			out |= bit
		}
	}
	return out
}

// Attributes are Envoy's attributes of a finished request with the downstream request's
// headers, as the Telemetry API's expressions read them (metrics tag values too).
func Attributes(in *streaminfo.Info, h http.Header) interpreter.Activation {
	return &attributes{in: in, h: h}
}
