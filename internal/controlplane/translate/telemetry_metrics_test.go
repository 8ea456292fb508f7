package translate

import (
	"encoding/json"
	"testing"

	xdstype "github.com/cncf/xds/go/xds/type/v3"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// statsConfigs is the istio.stats PluginConfig (as JSON) of every HTTP connection
// manager by inbound (true) or outbound side; "" where there is none. The router must
// stay last.
func statsConfigs(t *testing.T, res *Resources) map[bool][]string {
	t.Helper()
	out := map[bool][]string{}
	for _, lh := range hcmsOf(t, res) {
		fs := lh.h.GetHttpFilters()
		if fs[len(fs)-1].GetName() != "envoy.filters.http.router" {
			t.Fatalf("listener %s: the router is not last: %v", lh.l.GetName(), fs)
		}
		cfg := ""
		for _, hf := range fs {
			if hf.GetName() != StatsFilter {
				continue
			}
			var ts xdstype.TypedStruct
			if err := hf.GetTypedConfig().UnmarshalTo(&ts); err != nil || ts.GetTypeUrl() != statsPluginURL {
				t.Fatalf("istio.stats: %v %v", err, ts.GetTypeUrl())
			}
			b, _ := json.Marshal(ts.GetValue().AsMap())
			cfg = string(b)
		}
		inbound := lh.l.GetName() == "virtualInbound"
		out[inbound] = append(out[inbound], cfg)
	}
	return out
}

const metricsTelemetry = `
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: istio-system}
spec:
  metrics:
  - overrides:
    - match: {metric: REQUEST_SIZE}
      disabled: true
    - match: {metric: ALL_METRICS, mode: SERVER}
      tagOverrides: {request_protocol: {operation: REMOVE}}
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: reviews, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  metrics:
  - overrides:
    - match: {metric: REQUEST_SIZE, mode: CLIENT}
      disabled: false
`

// The Telemetry API's metrics overrides reach each side's HTTP connection managers as
// istiod writes them, merged root namespace → namespace → workload.
func TestMetricOverridesFromTelemetry(t *testing.T) {
	m, diags := model.Build(loadObjects(t, "_base.yaml", append(baseObjects(t), metricsTelemetry...)), nil)
	if len(diags) != 0 {
		t.Fatalf("warnings %v", diags)
	}
	const (
		dropReqBytes = `{"metrics":[{"drop":true,"name":"request_bytes"}]}`
		server       = `{"metrics":[{"name":"requests_total","tags_to_remove":["request_protocol"]},{"name":"request_duration_milliseconds","tags_to_remove":["request_protocol"]},{"drop":true,"name":"request_bytes","tags_to_remove":["request_protocol"]},{"name":"response_bytes","tags_to_remove":["request_protocol"]}]}`
	)
	for _, tc := range []struct{ id, inbound, outbound string }{
		{productpage, server, dropReqBytes},
		{"sidecar~127.0.10.2~reviews-v1.default~default.svc.cluster.local", server, ""}, // its client side turns request_bytes back on
	} {
		got := statsConfigs(t, Generate(m, proxy(t, tc.id)))
		for side, want := range map[bool]string{true: tc.inbound, false: tc.outbound} {
			if len(got[side]) == 0 {
				t.Fatalf("%s: no HTTP connection manager on side inbound=%v", tc.id, side)
			}
			for _, c := range got[side] {
				if c != want {
					t.Errorf("%s inbound=%v: istio.stats %s\nwant %s", tc.id, side, c, want)
				}
			}
		}
	}
}
