package xdsclient

import (
	"encoding/json"
	"fmt"

	udpatype "github.com/cncf/xds/go/udpa/type/v1"
	xdstype "github.com/cncf/xds/go/xds/type/v3"
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/lucid-mesh/lucid/internal/contract/celattr"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/stats"
)

// The istio.stats HTTP filter as istiod writes it: a TypedStruct of
// type.googleapis.com/stats.PluginConfig.
const (
	statsFilterName  = "istio.stats"
	statsPluginURL   = "type.googleapis.com/stats.PluginConfig"
	xdsTypedStruct   = "type.googleapis.com/xds.type.v3.TypedStruct"
	udpaTypedStruct  = "type.googleapis.com/udpa.type.v1.TypedStruct"
	statsMetricNames = "requests_total, request_duration_milliseconds, request_bytes, response_bytes"
)

// pluginConfig is the part of stats.PluginConfig Lucid applies: the metric overrides.
type pluginConfig struct {
	Metrics []struct {
		Name         string            `json:"name"`
		Dimensions   map[string]string `json:"dimensions"`
		TagsToRemove []string          `json:"tags_to_remove"`
		Drop         bool              `json:"drop"`
	} `json:"metrics"`
}

// decodeStatsFilter reads the metric overrides of an istio.stats filter among
// http_filters; nil when there is none or it overrides nothing. An override Lucid
// cannot apply (a metric that is not a standard HTTP one, a label that is not
// standard, a value that is not CEL) is refused, naming the field.
func decodeStatsFilter(filters []*hcmpb.HttpFilter) (*resource.StatsOverrides, error) {
	for i, f := range filters {
		if f.GetName() != statsFilterName {
			continue
		}
		ov, err := decodeStatsConfig(f)
		if err != nil {
			return nil, fmt.Errorf("http_filters[%d].typed_config.%w", i, err)
		}
		return ov, nil
	}
	return nil, nil
}

func decodeStatsConfig(f *hcmpb.HttpFilter) (*resource.StatsOverrides, error) {
	var ts interface {
		proto.Message
		GetTypeUrl() string
		GetValue() *structpb.Struct
	}
	switch a := f.GetTypedConfig(); a.GetTypeUrl() {
	case xdsTypedStruct:
		ts = &xdstype.TypedStruct{}
	case udpaTypedStruct:
		ts = &udpatype.TypedStruct{}
	default:
		return nil, nil // none, or Istio's compiled-in stats config: the standard metrics as they are
	}
	if err := f.GetTypedConfig().UnmarshalTo(ts); err != nil {
		return nil, err
	}
	if ts.GetTypeUrl() != statsPluginURL {
		return nil, fmt.Errorf("type_url: %q is not %s", ts.GetTypeUrl(), statsPluginURL)
	}
	value := ts.GetValue()
	js, err := value.MarshalJSON()
	if err != nil {
		return nil, err
	}
	var pc pluginConfig
	if err := json.Unmarshal(js, &pc); err != nil {
		return nil, fmt.Errorf("value: %w", err)
	}
	out := &resource.StatsOverrides{}
	for i, m := range pc.Metrics {
		p := fmt.Sprintf("value.metrics[%d]", i)
		if m.Name != "" && !stats.HTTPMetric(m.Name) {
			return nil, fmt.Errorf("%s.name: %q is not a metric Lucid overrides (%s)", p, m.Name, statsMetricNames)
		}
		mo := resource.MetricOverride{Name: m.Name, Drop: m.Drop}
		for _, t := range m.TagsToRemove {
			if stats.LabelIndex(t) < 0 {
				return nil, fmt.Errorf("%s.tags_to_remove: %q is not one of Istio's standard labels", p, t)
			}
			mo.Remove = append(mo.Remove, t)
		}
		for _, t := range sortedKeys(m.Dimensions) {
			if stats.LabelIndex(t) < 0 {
				return nil, fmt.Errorf("%s.dimensions[%s]: adding a label is not supported (only Istio's standard labels can be set)", p, t)
			}
			x, err := celattr.CompileValue(m.Dimensions[t])
			if err != nil {
				return nil, fmt.Errorf("%s.dimensions[%s]: %w", p, t, err)
			}
			mo.Upsert = append(mo.Upsert, resource.TagValue{Tag: t, Value: x})
		}
		out.Metrics = append(out.Metrics, mo)
	}
	if len(out.Metrics) == 0 {
		return nil, nil
	}
	return out, nil
}
