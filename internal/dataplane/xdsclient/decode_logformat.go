package xdsclient

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	fileal "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/lucid-mesh/lucid/internal/contract/logformat"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// decodeLogFormat reads a file access log's own format, as istiod writes a provider's
// envoyFileAccessLog.logFormat: log_format with an inline text_format_source (or
// text_format) or a json_format of string values; nil without one (the proxy's
// encoding). Formatter extensions and anything Lucid cannot format are refused, naming
// the field.
func decodeLogFormat(f *fileal.FileAccessLog) (*resource.LogFormat, error) {
	switch f.GetAccessLogFormat().(type) {
	case nil:
		return nil, nil
	case *fileal.FileAccessLog_LogFormat:
	default:
		return nil, fmt.Errorf("access_log_format: %T is not supported (log_format is)", f.GetAccessLogFormat())
	}
	sf := f.GetLogFormat()
	if len(sf.GetFormatters()) > 0 {
		return nil, errors.New("log_format.formatters: formatter extensions are not supported")
	}
	switch x := sf.GetFormat().(type) {
	case *corepb.SubstitutionFormatString_TextFormat:
		return textLogFormat("log_format.text_format", x.TextFormat) //nolint:staticcheck // deprecated for text_format_source, still what istiod and many bootstraps send
	case *corepb.SubstitutionFormatString_TextFormatSource:
		s, ok := x.TextFormatSource.GetSpecifier().(*corepb.DataSource_InlineString)
		if !ok {
			return nil, fmt.Errorf("log_format.text_format_source: %T is not supported (inline_string is)", x.TextFormatSource.GetSpecifier())
		}
		return textLogFormat("log_format.text_format_source.inline_string", s.InlineString)
	case *corepb.SubstitutionFormatString_JsonFormat:
		return jsonLogFormat(x.JsonFormat)
	}
	return nil, fmt.Errorf("log_format.format: %T is not supported", sf.GetFormat())
}

func textLogFormat(field, s string) (*resource.LogFormat, error) {
	parts, err := logformat.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	return &resource.LogFormat{Text: parts}, nil
}

// jsonLogFormat reads a JSON format's keys, sorted as Envoy prints them.
func jsonLogFormat(st *structpb.Struct) (*resource.LogFormat, error) {
	out := &resource.LogFormat{JSON: []resource.LogField{}}
	for _, k := range slices.Sorted(maps.Keys(st.GetFields())) {
		sv, ok := st.GetFields()[k].GetKind().(*structpb.Value_StringValue)
		if !ok {
			return nil, fmt.Errorf("log_format.json_format[%s]: want a string (nested objects and other values are not supported)", k)
		}
		parts, err := logformat.Parse(sv.StringValue)
		if err != nil {
			return nil, fmt.Errorf("log_format.json_format[%s]: %w", k, err)
		}
		out.JSON = append(out.JSON, resource.LogField{Key: k, Value: parts})
	}
	return out, nil
}
