package translate

import (
	accesslogpb "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	fileal "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	celpb "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/filters/cel/v3"
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcppb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// Access logger and filter names istiod writes for a Telemetry resource's accessLogging
// with an Envoy file provider.
const (
	FileAccessLogger = "envoy.access_loggers.file"
	CELAccessFilter  = "envoy.access_loggers.extension_filters.cel"
	devNull          = "/dev/null"
)

// addAccessLogs sets the access_log of every HTTP connection manager and tcp_proxy of
// listeners when a Telemetry resource configures access logging for the proxy's side
// (model.Mesh.AccessLogsFor), as istiod does: one file access log per provider, with the
// CEL filter as an extension filter; an opaque TCP connection is one line, its filter
// reading the connection's attributes. When Telemetry turns logging off, one access log
// to /dev/null says so (the proxy's own --access-log would otherwise log); when no
// Telemetry applies, the listeners carry none and the proxy's own access log logs every
// request and connection.
func (g *generator) addAccessLogs(listeners []proto.Message) {
	client, clientSet := g.accessLogConfig(model.TraceClient)
	server, serverSet := g.accessLogConfig(model.TraceServer)
	if !clientSet && !serverSet {
		return
	}
	side := func(inbound bool) ([]*accesslogpb.AccessLog, bool) {
		if inbound {
			return server, serverSet
		}
		return client, clientSet
	}
	g.eachHCM(listeners, func(inbound bool, h *hcmpb.HttpConnectionManager) bool {
		logs, set := side(inbound)
		if set {
			h.AccessLog = logs
		}
		return set
	})
	eachFilter(g, listeners, tcpProxyTypeURL, func() *tcppb.TcpProxy { return &tcppb.TcpProxy{} }, func(inbound bool, tp *tcppb.TcpProxy) bool {
		logs, set := side(inbound)
		if set {
			tp.AccessLog = logs
		}
		return set
	})
}

// accessLogConfig is the access_log for the proxy's mode side; set is false when no
// Telemetry configures it.
func (g *generator) accessLogConfig(mode model.TraceMode) ([]*accesslogpb.AccessLog, bool) {
	logs, set := g.m.AccessLogsFor(g.p, mode)
	if !set {
		return nil, false
	}
	if len(logs) == 0 {
		return []*accesslogpb.AccessLog{fileAccessLog(model.AccessLog{Path: devNull})}, true
	}
	out := make([]*accesslogpb.AccessLog, 0, len(logs))
	for _, l := range logs {
		out = append(out, fileAccessLog(l))
	}
	return out, true
}

// fileAccessLog is Envoy's file access log to al's path in its format (a text_format_source
// or a json_format, as istiod writes a provider's logFormat), filtered by its CEL
// expression.
func fileAccessLog(al model.AccessLog) *accesslogpb.AccessLog {
	f := &fileal.FileAccessLog{Path: al.Path}
	if lf := al.Format; lf != nil {
		sf := &corepb.SubstitutionFormatString{}
		if lf.Labels == nil {
			sf.Format = &corepb.SubstitutionFormatString_TextFormatSource{TextFormatSource: &corepb.DataSource{
				Specifier: &corepb.DataSource_InlineString{InlineString: lf.Text}}}
		} else {
			fields := map[string]*structpb.Value{}
			for k, v := range lf.Labels {
				fields[k] = structpb.NewStringValue(v)
			}
			sf.Format = &corepb.SubstitutionFormatString_JsonFormat{JsonFormat: &structpb.Struct{Fields: fields}}
		}
		f.AccessLogFormat = &fileal.FileAccessLog_LogFormat{LogFormat: sf}
	}
	filter := al.Filter
	l := &accesslogpb.AccessLog{Name: FileAccessLogger,
		ConfigType: &accesslogpb.AccessLog_TypedConfig{TypedConfig: mustAny(f)}}
	if filter != "" {
		l.Filter = &accesslogpb.AccessLogFilter{FilterSpecifier: &accesslogpb.AccessLogFilter_ExtensionFilter{ExtensionFilter: &accesslogpb.ExtensionFilter{
			Name: CELAccessFilter, ConfigType: &accesslogpb.ExtensionFilter_TypedConfig{TypedConfig: mustAny(&celpb.ExpressionFilter{Expression: filter})}}}}
	}
	return l
}
