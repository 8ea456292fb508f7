package xdsclient

import (
	"strings"
	"testing"

	accesslogpb "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	fileal "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	celpb "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/filters/cel/v3"
	streamal "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	tcppb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

func celAccessLog(t *testing.T, path, expr string) *accesslogpb.AccessLog {
	t.Helper()
	l := &accesslogpb.AccessLog{Name: fileAccessLog,
		ConfigType: &accesslogpb.AccessLog_TypedConfig{TypedConfig: tracerAny(t, &fileal.FileAccessLog{Path: path})}}
	if expr != "" {
		l.Filter = &accesslogpb.AccessLogFilter{FilterSpecifier: &accesslogpb.AccessLogFilter_ExtensionFilter{ExtensionFilter: &accesslogpb.ExtensionFilter{
			Name: celFilter, ConfigType: &accesslogpb.ExtensionFilter_TypedConfig{TypedConfig: tracerAny(t, &celpb.ExpressionFilter{Expression: expr})}}}}
	}
	return l
}

func TestDecodeAccessLogs(t *testing.T) {
	got, err := decodeAccessLogs([]*accesslogpb.AccessLog{celAccessLog(t, "/dev/stdout", "response.code >= 500"), celAccessLog(t, "/dev/null", "")})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Path != "/dev/stdout" || got[0].Filter == nil || got[0].Filter.Source != "response.code >= 500" ||
		got[1].Path != "/dev/null" || got[1].Filter != nil {
		t.Fatalf("got %+v", got)
	}
	if got, err := decodeAccessLogs(nil); got != nil || err != nil {
		t.Fatalf("no access_log = %v, %v; want nil (the proxy's own log)", got, err)
	}
}

// TestDecodeAccessLogsRefuses: what Lucid cannot run is NACKed with the field named.
func TestDecodeAccessLogsRefuses(t *testing.T) {
	stream := &accesslogpb.AccessLog{Name: "envoy.access_loggers.stdout",
		ConfigType: &accesslogpb.AccessLog_TypedConfig{TypedConfig: tracerAny(t, &streamal.StdoutAccessLog{})}}
	status := celAccessLog(t, "/dev/stdout", "")
	status.Filter = &accesslogpb.AccessLogFilter{FilterSpecifier: &accesslogpb.AccessLogFilter_StatusCodeFilter{StatusCodeFilter: &accesslogpb.StatusCodeFilter{}}}
	for _, tc := range []struct {
		l    *accesslogpb.AccessLog
		want string
	}{
		{celAccessLog(t, "/dev/stdout", "response.code >="), "[0].filter.extension_filter.typed_config.expression: 1:17: Syntax error"},
		{celAccessLog(t, "/dev/stdout", "1 + 1"), "must evaluate to a boolean"},
		{celAccessLog(t, "", ""), "[0].typed_config.path: required"},
		{stream, `access logger "envoy.access_loggers.stdout"`},
		{status, "[0].filter.filter_specifier: only the envoy.access_loggers.extension_filters.cel"},
	} {
		_, err := decodeAccessLogs([]*accesslogpb.AccessLog{tc.l})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v; want %q", err, tc.want)
		}
	}
}

// TestDecodeTCPProxyAccessLogs: a tcp_proxy's access_log is the chain's, decoded as an
// HTTP connection manager's; a filter that does not compile is NACKed naming it.
func TestDecodeTCPProxyAccessLogs(t *testing.T) {
	tp := func(logs ...*accesslogpb.AccessLog) *anypb.Any {
		return tracerAny(t, &tcppb.TcpProxy{StatPrefix: "web", ClusterSpecifier: &tcppb.TcpProxy_Cluster{Cluster: "outbound|9000||web"}, AccessLog: logs})
	}
	got, err := decodeTCPProxy(tp(celAccessLog(t, "/var/log/tcp.log", "connection.mtls")))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.AccessLogs) != 1 || got.AccessLogs[0].Path != "/var/log/tcp.log" || got.AccessLogs[0].Filter.Source != "connection.mtls" {
		t.Fatalf("access logs %+v", got.AccessLogs)
	}
	if got, err := decodeTCPProxy(tp()); err != nil || got.AccessLogs != nil {
		t.Fatalf("no access_log: %+v, %v; want nil (the proxy's own log)", got, err)
	}
	_, err = decodeTCPProxy(tp(celAccessLog(t, "/dev/stdout", "destination.port ==")))
	if err == nil || !strings.Contains(err.Error(), "access_log[0].filter.extension_filter.typed_config.expression: 1:") {
		t.Fatalf("err = %v", err)
	}
}
