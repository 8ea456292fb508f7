package config

import (
	"strings"
	"testing"
)

func TestValidateTelemetry(t *testing.T) {
	for _, tc := range []struct {
		name, spec string
		valid      bool
		want       []string // substrings of the diagnostics, in order
	}{
		{"tracing", "tracing:\n- providers: [{name: otel}]\n  randomSamplingPercentage: 10\n  customTags: {team: {literal: {value: books}}}\n", true, nil},
		{"sampling out of range", "tracing:\n- randomSamplingPercentage: 101\n", false,
			[]string{"t.yaml:7: Telemetry default/x: spec.tracing[0].randomSamplingPercentage: randomSamplingPercentage must be in range [0.0, 100.0], got 101"}},
		{"two tracing entries: Istio warns", "tracing:\n- randomSamplingPercentage: 1\n- randomSamplingPercentage: 2\n", true,
			[]string{"spec.tracing: multiple tracing is not currently supported"}},
		{"empty provider name", "tracing:\n- providers: [{name: \"\"}]\n", false, []string{"spec.tracing[0].providers[0].name: providers.name may not be empty"}},
		{"empty literal", "tracing:\n- customTags: {team: {literal: {value: \"\"}}}\n", false, []string{"spec.tracing[0].customTags[team].literal.value: literal tag value may not be empty"}},
		{"empty header name", "tracing:\n- customTags: {user: {header: {name: \"\"}}}\n", false, []string{"spec.tracing[0].customTags[user].header.name: header tag name may not be empty"}},
		{"selector and targetRef", "selector: {matchLabels: {app: a}}\ntargetRef: {kind: Service, name: a}\ntracing:\n- randomSamplingPercentage: 1\n", false,
			[]string{"spec: only one of targetRefs or workloadSelector can be set", "spec.targetRefs: not yet applied by Lucid"}},
		{"what Lucid does not apply yet", "accessLogging:\n- disabled: true\nmetrics:\n- providers: [{name: prometheus}]\n  reportingInterval: 5s\n  overrides: [{match: {metric: TCP_SENT_BYTES}, disabled: true}]\ntracing:\n- disableSpanReporting: true\n  disableContextPropagation: true\n", true,
			[]string{"spec.tracing[0].disableContextPropagation: not yet applied by Lucid", "spec.metrics[0].reportingInterval: not yet applied by Lucid",
				"spec.metrics[0].overrides[0].match.metric: TCP_SENT_BYTES is not yet overridden by Lucid"}},
		{"metric overrides", "metrics:\n- overrides:\n  - match: {metric: REQUEST_COUNT, mode: SERVER}\n    tagOverrides: {source_principal: {operation: REMOVE}, request_protocol: {value: \"request.protocol\"}}\n  - match: {metric: REQUEST_SIZE}\n    disabled: true\n", true, nil},
		{"metric tag values", "metrics:\n- overrides:\n  - tagOverrides: {a: {operation: REMOVE, value: x}, b: {value: \"\"}, c: {value: \"request.host +\"}, team: {value: \"'books'\"}}\n", false,
			[]string{"spec.metrics[0].overrides[0].tagOverrides[a].value: value can only be set when the operation is UPSERT",
				"spec.metrics[0].overrides[0].tagOverrides[b].value: must be set when the operation is UPSERT",
				"spec.metrics[0].overrides[0].tagOverrides[c].value: must be a valid CEL expression, 1:15: Syntax error",
				"spec.metrics[0].overrides[0].tagOverrides[team]: adding a label is not yet applied by Lucid"}},
		{"access logging", "accessLogging:\n- providers: [{name: envoy}]\n  filter: {expression: \"response.code >= 500\"}\n- disabled: true\n  match: {mode: SERVER}\n", true, nil},
		{"filter not CEL", "accessLogging:\n- filter: {expression: \"response.code >=\"}\n", false,
			[]string{"t.yaml:7: Telemetry default/x: spec.accessLogging[0].filter.expression: must be a valid CEL expression, 1:17: Syntax error"}},
		{"filter on an unknown attribute", "accessLogging:\n- filter: {expression: \"respons.code == 500\"}\n", false,
			[]string{"spec.accessLogging[0].filter.expression: must be a valid CEL expression, 1:1: undeclared reference to 'respons'"}},
		{"filter not a boolean", "accessLogging:\n- filter: {expression: \"response.code + 1\"}\n", false,
			[]string{"spec.accessLogging[0].filter.expression: must be a valid CEL expression, a filter expression must evaluate to a boolean"}},
		{"filter too costly", "accessLogging:\n- filter: {expression: \"request.headers.all(a, request.headers.all(b, a + b != ''))\"}\n", false,
			[]string{"t.yaml:7: Telemetry default/x: spec.accessLogging[0].filter.expression: the expression may cost too much per request: its worst-case cost is 131130603, over the limit of 1000000"}},
		{"tag value too costly", "metrics:\n- overrides:\n  - tagOverrides: {request_protocol: {value: \"string(request.headers.exists(a, request.headers.exists(b, request.headers[a].contains(b))))\"}}\n", false,
			[]string{"spec.metrics[0].overrides[0].tagOverrides[request_protocol].value: the expression may cost too much per request"}},
		{"request ids not used for sampling", "tracing:\n- useRequestIdForTraceSampling: false\n", true, nil},
		{"formatter tags", "tracing:\n- customTags: {sni: {formatter: {value: \"%REQUESTED_SERVER_NAME%\"}}, md: {formatter: {value: \"%DYNAMIC_METADATA(istio)%\"}}}\n", true,
			[]string{"spec.tracing[0].customTags[md].formatter.value: 1: %DYNAMIC_METADATA(istio)%: operator DYNAMIC_METADATA is not one Lucid formats; the tag is left out"}},
		{"unknown field", "tracing:\n- samplingPercentage: 1\n", false, []string{`spec.tracing[0].samplingPercentage: unknown field`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs, diags := Parse("t.yaml", []byte(doc("telemetry.istio.io/v1", KindTelemetry, "x", tc.spec)))
			if got := len(objs) == 1; got != tc.valid {
				t.Errorf("accepted = %v, want %v (%v)", got, tc.valid, diags)
			}
			if len(diags) != len(tc.want) {
				t.Fatalf("diagnostics %v, want %d: %q", diags, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(diags[i].String(), w) {
					t.Errorf("diagnostic %d = %q, want it to contain %q", i, diags[i].String(), w)
				}
			}
		})
	}
}
