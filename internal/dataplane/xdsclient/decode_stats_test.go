package xdsclient

import (
	"strings"
	"testing"

	xdstype "github.com/cncf/xds/go/xds/type/v3"
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

func statsFilter(t *testing.T, metrics ...any) *hcmpb.HttpFilter {
	t.Helper()
	v, err := structpb.NewStruct(map[string]any{"metrics": metrics})
	if err != nil {
		t.Fatal(err)
	}
	return &hcmpb.HttpFilter{Name: statsFilterName, ConfigType: &hcmpb.HttpFilter_TypedConfig{
		TypedConfig: tracerAny(t, &xdstype.TypedStruct{TypeUrl: statsPluginURL, Value: v})}}
}

func TestDecodeStatsFilter(t *testing.T) {
	got, err := decodeStatsFilter([]*hcmpb.HttpFilter{statsFilter(t,
		map[string]any{"name": "request_bytes", "drop": true},
		map[string]any{"name": "requests_total", "tags_to_remove": []any{"source_principal"}, "dimensions": map[string]any{"destination_version": "request.host"}})})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Metrics) != 2 || !got.Metrics[0].Drop || got.Metrics[0].Name != "request_bytes" ||
		got.Metrics[1].Remove[0] != "source_principal" || got.Metrics[1].Upsert[0].Tag != "destination_version" || got.Metrics[1].Upsert[0].Value.Source != "request.host" {
		t.Fatalf("got %+v", got)
	}
	if got, err := decodeStatsFilter(nil); got != nil || err != nil {
		t.Fatalf("no filter: %v, %v", got, err)
	}
	for _, tc := range []struct {
		m    map[string]any
		want string
	}{
		{map[string]any{"name": "tcp_sent_bytes_total", "drop": true}, `http_filters[0].typed_config.value.metrics[0].name: "tcp_sent_bytes_total" is not a metric Lucid overrides`},
		{map[string]any{"tags_to_remove": []any{"team"}}, `value.metrics[0].tags_to_remove: "team" is not one of Istio's standard labels`},
		{map[string]any{"dimensions": map[string]any{"team": "'x'"}}, "value.metrics[0].dimensions[team]: adding a label is not supported"},
		{map[string]any{"dimensions": map[string]any{"source_app": "request.host +"}}, "value.metrics[0].dimensions[source_app]: 1:15: Syntax error"},
	} {
		_, err := decodeStatsFilter([]*hcmpb.HttpFilter{statsFilter(t, tc.m)})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v; want %q", err, tc.want)
		}
	}
}
