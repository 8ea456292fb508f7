package resource

import (
	"github.com/lucid-mesh/lucid/internal/contract/celattr"
	"github.com/lucid-mesh/lucid/internal/contract/logformat"
)

// AccessLog is one access_log entry of an HTTP connection manager or a tcp_proxy: Envoy's
// file access log (envoy.access_loggers.file) with an optional CEL filter
// (envoy.access_loggers.extension_filters.cel), as istiod writes a Telemetry resource's
// accessLogging. HTTPManager.AccessLogs (TCPProxy.AccessLogs) nil means the chain has
// none and the proxy's own --access-log logs every request (connection); a Telemetry
// that turns logging off sends one entry to /dev/null.
type AccessLog struct {
	Path   string        // FileAccessLog.path: "/dev/stdout", a file, or DevNull
	Filter *celattr.Expr // nil: every request
	Format *LogFormat    // FileAccessLog.log_format; nil: the proxy's encoding (TEXT or JSON)
}

// LogFormat is a file access log's own format (Istio's envoyFileAccessLog.logFormat):
// a text line, or a JSON object whose values are format strings.
type LogFormat struct {
	Text []logformat.Part // text_format_source; nil with JSON
	JSON []LogField       // json_format, by key
}

// LogField is one key of a JSON log format and its value's format string.
type LogField struct {
	Key   string
	Value []logformat.Part
}

// DevNull is the path of an access log that writes nothing.
const DevNull = "/dev/null"
