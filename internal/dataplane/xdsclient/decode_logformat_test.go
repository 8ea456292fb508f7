package xdsclient

import (
	"strings"
	"testing"

	accesslogpb "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	fileal "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

func formattedAccessLog(t *testing.T, sf *corepb.SubstitutionFormatString) *accesslogpb.AccessLog {
	t.Helper()
	return &accesslogpb.AccessLog{Name: fileAccessLog, ConfigType: &accesslogpb.AccessLog_TypedConfig{TypedConfig: tracerAny(t,
		&fileal.FileAccessLog{Path: "/dev/stdout", AccessLogFormat: &fileal.FileAccessLog_LogFormat{LogFormat: sf}})}}
}

func inlineText(s string) *corepb.SubstitutionFormatString {
	return &corepb.SubstitutionFormatString{Format: &corepb.SubstitutionFormatString_TextFormatSource{
		TextFormatSource: &corepb.DataSource{Specifier: &corepb.DataSource_InlineString{InlineString: s}}}}
}

// TestDecodeLogFormat: a file access log's own text or JSON format, as istiod writes a
// provider's logFormat, is decoded for the proxy to write; what it cannot format is
// NACKed naming the field.
func TestDecodeLogFormat(t *testing.T) {
	labels, err := structpb.NewStruct(map[string]any{"path": "%REQ(:PATH)%", "code": "%RESPONSE_CODE%"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeAccessLogs([]*accesslogpb.AccessLog{
		formattedAccessLog(t, inlineText("%REQ(:METHOD)% %RESPONSE_CODE%\n")),
		formattedAccessLog(t, &corepb.SubstitutionFormatString{Format: &corepb.SubstitutionFormatString_JsonFormat{JsonFormat: labels}}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if f := got[0].Format; f == nil || len(f.Text) != 4 || f.Text[0].Op != "REQ" || f.Text[2].Op != "RESPONSE_CODE" {
		t.Errorf("text format %+v", f)
	}
	if f := got[1].Format; f == nil || len(f.JSON) != 2 || f.JSON[0].Key != "code" || f.JSON[1].Key != "path" {
		t.Errorf("JSON format %+v: want its keys sorted", f)
	}

	nested, _ := structpb.NewStruct(map[string]any{"a": map[string]any{"b": "%PROTOCOL%"}})
	for _, tc := range []struct {
		sf   *corepb.SubstitutionFormatString
		want string
	}{
		{inlineText("%DYNAMIC_METADATA(istio)%"), "[0].typed_config.log_format.text_format_source.inline_string: 1: %DYNAMIC_METADATA(istio)%: operator DYNAMIC_METADATA is not one Lucid formats"},
		{&corepb.SubstitutionFormatString{Format: &corepb.SubstitutionFormatString_JsonFormat{JsonFormat: nested}}, "log_format.json_format[a]: want a string"},
		{&corepb.SubstitutionFormatString{Format: &corepb.SubstitutionFormatString_TextFormatSource{TextFormatSource: &corepb.DataSource{
			Specifier: &corepb.DataSource_Filename{Filename: "/etc/format"}}}}, "inline_string is"},
		{&corepb.SubstitutionFormatString{Format: inlineText("x").Format, Formatters: []*corepb.TypedExtensionConfig{{Name: "envoy.formatter.cel"}}}, "formatter extensions are not supported"},
	} {
		_, err := decodeAccessLogs([]*accesslogpb.AccessLog{formattedAccessLog(t, tc.sf)})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v; want %q", err, tc.want)
		}
	}
}
