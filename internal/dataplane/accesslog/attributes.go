package accesslog

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/cel-go/interpreter"

	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// attributes are Envoy's request attributes of one finished request, as a CEL filter
// (Telemetry accessLogging filter.expression) reads them. Each root map is built only when
// the expression names it, and only for requests a listener filters: a listener without a
// filter never gets here.
type attributes struct {
	in *streaminfo.Info
	h  http.Header // the downstream request's headers
}

var _ interpreter.Activation = attributes{}

// Parent is nil: every name is resolved here.
func (a attributes) Parent() interpreter.Activation { return nil }

// ResolveName returns the map of a root attribute (celattr.Roots).
func (a attributes) ResolveName(name string) (any, bool) {
	in := a.in
	switch name {
	case "request":
		path, _, _ := strings.Cut(in.Path, "?")
		return map[string]any{
			"path": in.Path, "url_path": path, "host": in.Authority, "method": in.Method,
			"scheme": scheme(a.h), "headers": headerMap(a.h), "referer": get(a.h, "Referer"),
			"useragent": in.UserAgent, "id": in.RequestID, "protocol": in.Protocol,
			"time": in.Start, "duration": in.Duration, "size": in.BytesReceived, "total_size": in.BytesReceived,
		}, true
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
			"mtls":                  in.Direction == "inbound" && in.Source.Principal != "",
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

func get(h http.Header, canonical string) string {
	if v := h[canonical]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func scheme(h http.Header) string {
	if s := get(h, "X-Forwarded-Proto"); s != "" {
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
	return attributes{in: in, h: h}
}
