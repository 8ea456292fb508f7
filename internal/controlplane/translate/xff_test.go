package translate

import (
	"strings"
	"testing"

	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// TestGatewayNumTrustedProxies: a gateway's HTTP connection managers trust as many
// x-forwarded-for hops as its proxy configuration says: the workload's proxy.istio.io/config
// annotation over meshConfig.defaultConfig.gatewayTopology.numTrustedProxies (0 in the
// annotation included), as Istio; a sidecar's inbound and outbound trust none.
func TestGatewayNumTrustedProxies(t *testing.T) {
	const gatewayID = "router~127.0.0.1~istio-ingressgateway.istio-system~istio-system.svc.cluster.local"
	for _, c := range []struct {
		name, mesh, annotation string
		want                   uint32
	}{
		{name: "neither", want: 0},
		{name: "mesh default", mesh: "defaultConfig: {gatewayTopology: {numTrustedProxies: 2}}", want: 2},
		{name: "annotation (YAML)", annotation: "gatewayTopology: {numTrustedProxies: 1}", want: 1},
		{name: "annotation over the mesh", mesh: "defaultConfig: {gatewayTopology: {numTrustedProxies: 2}}", annotation: `{"gatewayTopology": {"numTrustedProxies": 1}}`, want: 1},
		{name: "annotation 0 over the mesh", mesh: "defaultConfig: {gatewayTopology: {numTrustedProxies: 2}}", annotation: `{"gatewayTopology": {"numTrustedProxies": 0}}`, want: 0},
		{name: "annotation without the field", mesh: "defaultConfig: {gatewayTopology: {numTrustedProxies: 2}}", annotation: `{"concurrency": 2}`, want: 2},
		{name: "unreadable annotation", mesh: "defaultConfig: {gatewayTopology: {numTrustedProxies: 2}}", annotation: `{gatewayTopology: [`, want: 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			y := collectorEntry
			if c.annotation != "" {
				y = strings.Replace(y, "annotations: {lucid.dev/proxy: router}", "annotations: {lucid.dev/proxy: router, proxy.istio.io/config: '"+c.annotation+"'}", 1)
			}
			m, _ := model.Build(loadObjects(t, "_base.yaml", append(baseObjects(t), y...)), meshConfig(t, "{"+c.mesh+"}"))
			gw := hcms(t, Generate(m, m.ResolveProxy(proxy(t, gatewayID))))
			if len(gw) == 0 {
				t.Fatal("the gateway has no HTTP connection manager")
			}
			for _, h := range gw {
				if !h.GetUseRemoteAddress().GetValue() || h.GetXffNumTrustedHops() != c.want {
					t.Errorf("%s: use_remote_address %v xff_num_trusted_hops %d; want true %d", h.GetStatPrefix(), h.GetUseRemoteAddress().GetValue(), h.GetXffNumTrustedHops(), c.want)
				}
			}
			for _, h := range hcms(t, Generate(m, m.ResolveProxy(proxy(t, productpage)))) {
				if h.GetXffNumTrustedHops() != 0 {
					t.Errorf("sidecar %s: xff_num_trusted_hops %d; want 0", h.GetStatPrefix(), h.GetXffNumTrustedHops())
				}
			}
		})
	}
}

// hcms are the HTTP connection managers of res's listeners.
func hcms(t *testing.T, res *Resources) []*hcmpb.HttpConnectionManager {
	t.Helper()
	var out []*hcmpb.HttpConnectionManager
	for _, msg := range res.Listeners {
		for _, fc := range msg.(*listenerpb.Listener).GetFilterChains() {
			for _, f := range fc.GetFilters() {
				if f.GetName() != HCMFilter {
					continue
				}
				h := &hcmpb.HttpConnectionManager{}
				if err := f.GetTypedConfig().UnmarshalTo(h); err != nil {
					t.Fatal(err)
				}
				out = append(out, h)
			}
		}
	}
	return out
}
