// Package streaminfo is the record of one request (or TCP connection) as it crosses the
// proxy: what came in, what was decided, what went out. forward fills it in; the access
// log, the stats and the admin API read it. It mirrors Envoy's StreamInfo so that the
// access log and metrics can be Istio's, field for field.
package streaminfo

import (
	"net/netip"
	"time"
)

// Flag is one Envoy response flag.
type Flag uint32

// Envoy response flags, with the short names Envoy prints (Envoy's %RESPONSE_FLAGS%).
const (
	FailedLocalHealthCheck           Flag = 1 << iota // LH
	NoHealthyUpstream                                 // UH
	UpstreamRequestTimeout                            // UT
	LocalReset                                        // LR
	UpstreamRemoteReset                               // UR
	UpstreamConnectionFailure                         // UF
	UpstreamConnectionTermination                     // UC
	UpstreamOverflow                                  // UO
	NoRouteFound                                      // NR
	DelayInjected                                     // DI
	FaultInjected                                     // FI
	RateLimited                                       // RL
	UnauthorizedExternalService                       // UAEX
	RateLimitServiceError                             // RLSE
	DownstreamConnectionTermination                   // DC
	UpstreamRetryLimitExceeded                        // URX
	StreamIdleTimeout                                 // SI
	InvalidEnvoyRequestHeaders                        // IH
	DownstreamProtocolError                           // DPE
	UpstreamMaxStreamDurationReached                  // UMSDR
	NoFilterConfigFound                               // NFCF
	DurationTimeout                                   // DT
	UpstreamProtocolError                             // UPE
	NoClusterFound                                    // NC
	OverloadManager                                   // OM
	DNSResolutionFailed                               // DF
	DownstreamRemoteReset                             // DR
)

// flagNames is in Envoy's print order (stream_info/utility.h).
var flagNames = []struct {
	f    Flag
	name string
}{
	{FailedLocalHealthCheck, "LH"},
	{NoHealthyUpstream, "UH"},
	{UpstreamRequestTimeout, "UT"},
	{LocalReset, "LR"},
	{UpstreamRemoteReset, "UR"},
	{UpstreamConnectionFailure, "UF"},
	{UpstreamConnectionTermination, "UC"},
	{UpstreamOverflow, "UO"},
	{NoRouteFound, "NR"},
	{DelayInjected, "DI"},
	{FaultInjected, "FI"},
	{RateLimited, "RL"},
	{UnauthorizedExternalService, "UAEX"},
	{RateLimitServiceError, "RLSE"},
	{DownstreamConnectionTermination, "DC"},
	{UpstreamRetryLimitExceeded, "URX"},
	{StreamIdleTimeout, "SI"},
	{InvalidEnvoyRequestHeaders, "IH"},
	{DownstreamProtocolError, "DPE"},
	{UpstreamMaxStreamDurationReached, "UMSDR"},
	{NoFilterConfigFound, "NFCF"},
	{DurationTimeout, "DT"},
	{UpstreamProtocolError, "UPE"},
	{NoClusterFound, "NC"},
	{OverloadManager, "OM"},
	{DNSResolutionFailed, "DF"},
	{DownstreamRemoteReset, "DR"},
}

// AllFlags lists every flag with its short name, in Envoy's order.
func AllFlags() []Flag {
	out := make([]Flag, len(flagNames))
	for i, n := range flagNames {
		out[i] = n.f
	}
	return out
}

// String renders flags as Envoy does: short names joined with ",", or "-" for none.
func (f Flag) String() string {
	if f == 0 {
		return "-"
	}
	return string(f.AppendTo(make([]byte, 0, 16)))
}

// AppendTo appends String's text to b.
func (f Flag) AppendTo(b []byte) []byte {
	if f == 0 {
		return append(b, '-')
	}
	n0 := len(b)
	for _, n := range flagNames {
		if f&n.f != 0 {
			if len(b) > n0 {
				b = append(b, ',')
			}
			b = append(b, n.name...)
		}
	}
	return b
}

// Peer describes one side of a request for Istio's metrics labels.
type Peer struct {
	Workload          string // workload name (WorkloadEntry or pod owner)
	Namespace         string
	App               string // "app" label
	Version           string // "version" label
	CanonicalService  string
	CanonicalRevision string
	Principal         string // SPIFFE URI of its mutual-TLS certificate, else ""
	Cluster           string // cluster ID, "Kubernetes" by default
}

// Info is the record of one downstream request.
//
// Ownership: forward creates it when a request arrives and is its only writer until the
// request ends; observers (access log, stats) get it afterwards and must not keep it.
type Info struct {
	Start    time.Time
	Duration time.Duration // until the last byte was sent downstream

	// Request.
	Method        string
	Path          string // :path as received, or x-envoy-original-path when a rewrite happened
	Protocol      string // "HTTP/1.1", "HTTP/2", "HTTP/1.0"; "" for TCP
	Authority     string
	UserAgent     string
	RequestID     string // x-request-id
	ForwardedFor  string // x-forwarded-for as received
	BytesReceived int64  // request body bytes

	// Response.
	ResponseCode                   int // 0 when none was sent (e.g. downstream reset)
	Flags                          Flag
	ResponseCodeDetails            string // "via_upstream", "route_not_found", "no_healthy_upstream", ...
	ConnectionTerminationDetails   string
	UpstreamTransportFailureReason string
	BytesSent                      int64  // response body bytes
	GRPCStatus                     string // grpc-status when the response had one

	// Upstream.
	UpstreamServiceTime  time.Duration // time to the first upstream response byte; <0 when none
	UpstreamHost         string        // "ip:port" of the endpoint used last
	UpstreamCluster      string        // cluster name
	UpstreamLocalAddress string
	Attempts             int // upstream attempts made (x-envoy-attempt-count of the last)

	// Downstream.
	DownstreamLocalAddress  netip.AddrPort
	DownstreamRemoteAddress netip.AddrPort
	RequestedServerName     string // SNI
	MTLS                    bool   // the downstream presented a certificate the proxy verified (Envoy's connection.mtls; inbound: Istio's connection_security_policy mutual_tls)
	RouteName               string

	// Mesh.
	Direction                   string // "inbound" or "outbound" (reporter destination / source)
	Source                      Peer
	Destination                 Peer
	DestinationService          string // FQDN of the destination service
	DestinationServiceName      string
	DestinationServiceNamespace string

	// LucidError is the human explanation also sent as x-lucid-error on local replies
	// ("UH: subset \"v1\" of reviews... selects 0 of 2 endpoints (...)"); "" on success.
	LucidError string
	// Notes are extra details for the access log ("reused-conn-retry", ...).
	Notes []string
}
