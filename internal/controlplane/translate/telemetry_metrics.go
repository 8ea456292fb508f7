package translate

import (
	"maps"
	"slices"

	xdstype "github.com/cncf/xds/go/xds/type/v3"
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// The stats filter istiod configures metric overrides in.
const (
	StatsFilter    = "istio.stats"
	statsPluginURL = "type.googleapis.com/stats.PluginConfig"
)

// addMetricOverrides puts Istio's istio.stats HTTP filter, before the router, in every
// HTTP connection manager of listeners whose side the Telemetry API's metrics overrides
// apply to (model.Mesh.MetricsFor), its PluginConfig listing per metric what is dropped,
// removed and set, as istiod writes it.
func (g *generator) addMetricOverrides(listeners []proto.Message) {
	client, server := g.statsFilter(model.TraceClient), g.statsFilter(model.TraceServer)
	if client == nil && server == nil {
		return
	}
	g.eachHCM(listeners, func(inbound bool, h *hcmpb.HttpConnectionManager) bool {
		f := client
		if inbound {
			f = server
		}
		if f == nil || len(h.GetHttpFilters()) == 0 {
			return false
		}
		n := len(h.HttpFilters) - 1 // the router stays last
		h.HttpFilters = slices.Insert(h.HttpFilters, n, f)
		return true
	})
}

// statsFilter is the istio.stats filter for the proxy's mode side; nil: no overrides.
func (g *generator) statsFilter(mode model.TraceMode) *hcmpb.HttpFilter {
	ovs := g.m.MetricsFor(g.p, mode)
	if len(ovs) == 0 {
		return nil
	}
	metrics := make([]any, 0, len(ovs))
	for _, o := range ovs {
		m := map[string]any{"name": o.Name}
		if o.Disabled {
			m["drop"] = true
		}
		if len(o.Remove) > 0 {
			rm := make([]any, len(o.Remove))
			for i, t := range o.Remove {
				rm[i] = t
			}
			m["tags_to_remove"] = rm
		}
		if len(o.Upsert) > 0 {
			dims := map[string]any{}
			for _, t := range slices.Sorted(maps.Keys(o.Upsert)) {
				dims[t] = o.Upsert[t]
			}
			m["dimensions"] = dims
		}
		metrics = append(metrics, m)
	}
	value, err := structpb.NewStruct(map[string]any{"metrics": metrics})
	if err != nil {
		panic(err) // only strings, bools, lists and maps: always representable
	}
	return &hcmpb.HttpFilter{Name: StatsFilter, ConfigType: &hcmpb.HttpFilter_TypedConfig{
		TypedConfig: mustAny(&xdstype.TypedStruct{TypeUrl: statsPluginURL, Value: value})}}
}
