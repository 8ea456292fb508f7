package xdsclient

import (
	"fmt"

	accesslogpb "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	fileal "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	celpb "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/filters/cel/v3"

	"github.com/lucid-mesh/lucid/internal/contract/celattr"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// The access loggers and filters Lucid runs (AccessLog.name / typed_config, and
// AccessLogFilter.extension_filter), as istiod writes a Telemetry resource's
// accessLogging with the envoy file provider.
const (
	fileAccessLog    = "envoy.access_loggers.file"
	fileAccessLogURL = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"
	celFilter        = "envoy.access_loggers.extension_filters.cel"
	celFilterURL     = "type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter"
)

// decodeAccessLogs reads the access_log entries of an HTTP connection manager or a
// tcp_proxy; nil when it has none (the proxy's own access log applies). A logger or filter Lucid does not run
// is refused, naming the entry, rather than silently logging everything.
func decodeAccessLogs(logs []*accesslogpb.AccessLog) ([]resource.AccessLog, error) {
	if len(logs) == 0 {
		return nil, nil
	}
	out := make([]resource.AccessLog, 0, len(logs))
	for i, l := range logs {
		tc := l.GetTypedConfig()
		if tc.GetTypeUrl() != fileAccessLogURL {
			return nil, fmt.Errorf("[%d]: access logger %q (%s) is not supported (%s is)", i, l.GetName(), tc.GetTypeUrl(), fileAccessLog)
		}
		var f fileal.FileAccessLog
		if err := tc.UnmarshalTo(&f); err != nil {
			return nil, fmt.Errorf("[%d].typed_config: %w", i, err)
		}
		if f.GetPath() == "" {
			return nil, fmt.Errorf("[%d].typed_config.path: required", i)
		}
		al := resource.AccessLog{Path: f.GetPath()}
		var err error
		if al.Format, err = decodeLogFormat(&f); err != nil { // decode_logformat.go
			return nil, fmt.Errorf("[%d].typed_config.%w", i, err)
		}
		if flt := l.GetFilter(); flt != nil {
			x, err := decodeAccessLogFilter(flt)
			if err != nil {
				return nil, fmt.Errorf("[%d].filter.%w", i, err)
			}
			al.Filter = x
		}
		out = append(out, al)
	}
	return out, nil
}

// decodeAccessLogFilter compiles a CEL extension filter; other filters are refused.
func decodeAccessLogFilter(f *accesslogpb.AccessLogFilter) (*celattr.Expr, error) {
	ext := f.GetExtensionFilter()
	if ext == nil || ext.GetTypedConfig().GetTypeUrl() != celFilterURL {
		return nil, fmt.Errorf("filter_specifier: only the %s extension_filter is supported", celFilter)
	}
	var e celpb.ExpressionFilter
	if err := ext.GetTypedConfig().UnmarshalTo(&e); err != nil {
		return nil, fmt.Errorf("extension_filter.typed_config: %w", err)
	}
	x, err := celattr.CompileFilter(e.GetExpression())
	if err != nil {
		return nil, fmt.Errorf("extension_filter.typed_config.expression: %w", err)
	}
	return x, nil
}
