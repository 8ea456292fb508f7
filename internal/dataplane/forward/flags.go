package forward

import "github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"

// EmittedFlags lists every response flag the proxy can set on a request or connection
// (only forward sets them), each with the local reply it goes with. docs/errors.md must
// describe each one, and every flag the tree's code names must be here (test/diag checks
// both); add a flag here when forward starts emitting it.
var EmittedFlags = []streaminfo.Flag{
	streaminfo.NoRouteFound,                    // NR: 404, no route (or route config not arrived)
	streaminfo.NoClusterFound,                  // NC: 503, the route's cluster does not exist
	streaminfo.NoHealthyUpstream,               // UH: 503 "no healthy upstream"
	streaminfo.UpstreamConnectionFailure,       // UF: 503, connect failed
	streaminfo.UpstreamConnectionTermination,   // UC: 503, connection closed before/while responding
	streaminfo.UpstreamRemoteReset,             // UR: 503, stream reset by the upstream
	streaminfo.UpstreamProtocolError,           // UPE: 502, invalid upstream response
	streaminfo.UpstreamRequestTimeout,          // UT: 504, route or per-try timeout
	streaminfo.UpstreamRetryLimitExceeded,      // URX: with the last attempt's failure
	streaminfo.DownstreamConnectionTermination, // DC: the client went away
	streaminfo.FaultInjected,                   // FI: fault injection abort
	streaminfo.DelayInjected,                   // DI: fault injection delay
	streaminfo.LocalReset,                      // LR: a stream on an endpoint that left its cluster, ended after the drain grace period
	streaminfo.UpstreamOverflow,                // UO: 503, circuit breaker (connection pool limits) open
	streaminfo.DownstreamProtocolError,         // DPE: 400/426/431/501, a request Envoy's codec refuses (downstream.go); 508, a forwarding loop (loop.go)
	streaminfo.UnauthorizedExternalService,     // UAEX: ext_authz refused or could not decide (authz.go)
}

// LucidError renders the x-lucid-error value (and access-log text) of a local reply with
// flags and explanation, exactly as the proxy sends it (Reply.LucidError for `lucid why`).
func LucidError(flags streaminfo.Flag, explanation string) string {
	return oneLine(flags.String() + ": " + explanation)
}
