package contract

import "time"

// TapPath is the admin API's streaming endpoint (one TapEvent per line, JSON) that
// `lucid tap` reads; the control plane relays it at TapRelayPath?workload=<name>.
const (
	TapPath      = "/tap"
	TapRelayPath = "/debug/tap"
)

// TapEvent is one finished request (or TCP connection) as a proxy's tap reports it.
type TapEvent struct {
	Time      time.Time `json:"time"`      // when the request started
	Proxy     string    `json:"proxy"`     // the reporting proxy: <workload>.<namespace>
	Direction string    `json:"direction"` // "inbound" or "outbound"
	Protocol  string    `json:"protocol,omitempty"`
	Method    string    `json:"method,omitempty"`
	Authority string    `json:"authority,omitempty"`
	Path      string    `json:"path,omitempty"`
	Status    int       `json:"status"`
	Flags     string    `json:"flags"` // Envoy's response flags, "-" for none
	// DurationMS is the time to the last byte sent downstream, in milliseconds.
	DurationMS float64 `json:"duration_ms"`
	// UpstreamHost is the endpoint used last ("ip:port"); UpstreamCluster its cluster.
	UpstreamHost    string `json:"upstream_host,omitempty"`
	UpstreamCluster string `json:"upstream_cluster,omitempty"`
	Route           string `json:"route,omitempty"`
	// Source and Destination are workload names, "" where unknown.
	Source             string `json:"source,omitempty"`
	Destination        string `json:"destination,omitempty"`
	DestinationService string `json:"destination_service,omitempty"`
	RequestID          string `json:"request_id,omitempty"`
	// Error is Lucid's explanation of a failure (the x-lucid-error header); "" on success.
	Error string `json:"error,omitempty"`
	// Skipped counts the matching requests not sent before this one (the listener's
	// rate, or a reader too slow for the proxy's buffer).
	Skipped uint64 `json:"skipped,omitempty"`
}

// TapFilter names the filter query parameters TapPath and TapRelayPath accept:
// to (destination service, a prefix of its host), path (prefix), method, status ("5xx",
// "503", "4xx,5xx"), flags ("UH,UC": any of), direction, errors (status ≥ 500 or any
// flag), rps (events per second the proxy sends at most).
var TapFilter = []string{"to", "path", "method", "status", "flags", "direction", "errors", "rps"}
