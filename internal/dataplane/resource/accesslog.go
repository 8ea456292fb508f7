package resource

import "github.com/lucid-mesh/lucid/internal/contract/celattr"

// AccessLog is one access_log entry of an HTTP connection manager or a tcp_proxy: Envoy's
// file access log (envoy.access_loggers.file) with an optional CEL filter
// (envoy.access_loggers.extension_filters.cel), as istiod writes a Telemetry resource's
// accessLogging. HTTPManager.AccessLogs (TCPProxy.AccessLogs) nil means the chain has
// none and the proxy's own --access-log logs every request (connection); a Telemetry
// that turns logging off sends one entry to /dev/null.
type AccessLog struct {
	Path   string        // FileAccessLog.path: "/dev/stdout", a file, or DevNull
	Filter *celattr.Expr // nil: every request
}

// DevNull is the path of an access log that writes nothing.
const DevNull = "/dev/null"
