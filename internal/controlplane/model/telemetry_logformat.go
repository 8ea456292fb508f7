package model

import (
	"maps"
	"slices"
	"strings"

	"google.golang.org/protobuf/types/known/structpb"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"

	"github.com/lucid-mesh/lucid/internal/contract/logformat"
)

// LogFormat is an access-log provider's own format (envoyFileAccessLog.logFormat), as
// istiod writes it: a text line (a newline added when it lacks one), or JSON keys each
// with a format string. nil: the proxy's encoding.
type LogFormat struct {
	Text   string
	Labels map[string]string // nil for Text
}

// istioJSONLabels are Istio's JSON access-log format (EnvoyJSONLogFormatIstio), which
// logFormat.labels without labels asks for.
var istioJSONLabels = map[string]string{
	"start_time": "%START_TIME%", "route_name": "%ROUTE_NAME%", "method": "%REQ(:METHOD)%",
	"path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%", "protocol": "%PROTOCOL%",
	"response_code": "%RESPONSE_CODE%", "response_flags": "%RESPONSE_FLAGS%",
	"response_code_details": "%RESPONSE_CODE_DETAILS%", "connection_termination_details": "%CONNECTION_TERMINATION_DETAILS%",
	"bytes_received": "%BYTES_RECEIVED%", "bytes_sent": "%BYTES_SENT%", "duration": "%DURATION%",
	"upstream_service_time": "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%", "x_forwarded_for": "%REQ(X-FORWARDED-FOR)%",
	"user_agent": "%REQ(USER-AGENT)%", "request_id": "%REQ(X-REQUEST-ID)%", "authority": "%REQ(:AUTHORITY)%",
	"upstream_host": "%UPSTREAM_HOST%", "upstream_cluster": "%UPSTREAM_CLUSTER_RAW%",
	"upstream_local_address": "%UPSTREAM_LOCAL_ADDRESS%", "downstream_local_address": "%DOWNSTREAM_LOCAL_ADDRESS%",
	"downstream_remote_address": "%DOWNSTREAM_REMOTE_ADDRESS%", "requested_server_name": "%REQUESTED_SERVER_NAME%",
	"upstream_transport_failure_reason": "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
}

// providerLogFormat is provider f's format, checked with the proxies' parser: a format
// they could not run is a problem (field relative to the provider, message) and the
// proxy's encoding is used instead.
func providerLogFormat(f *meshv1alpha1.MeshConfig_ExtensionProvider_EnvoyFileAccessLogProvider) (*LogFormat, string, string) {
	lf := f.GetLogFormat()
	switch {
	case lf == nil:
		return nil, "", ""
	case lf.GetText() != "":
		text := lf.GetText()
		if !strings.HasSuffix(text, "\n") {
			text += "\n"
		}
		if _, err := logformat.Parse(text); err != nil {
			return nil, "envoyFileAccessLog.logFormat.text", err.Error()
		}
		return &LogFormat{Text: text}, "", ""
	case lf.GetLabels() != nil:
		labels := map[string]string{}
		for _, k := range slices.Sorted(maps.Keys(lf.GetLabels().GetFields())) {
			sv, ok := lf.GetLabels().GetFields()[k].GetKind().(*structpb.Value_StringValue)
			if !ok {
				return nil, "envoyFileAccessLog.logFormat.labels[" + k + "]", "want a string: Lucid formats string labels only"
			}
			if _, err := logformat.Parse(sv.StringValue); err != nil {
				return nil, "envoyFileAccessLog.logFormat.labels[" + k + "]", err.Error()
			}
			labels[k] = sv.StringValue
		}
		if len(labels) == 0 {
			labels = istioJSONLabels
		}
		return &LogFormat{Labels: labels}, "", ""
	}
	return nil, "", ""
}
