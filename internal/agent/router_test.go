package agent

import (
	"net/netip"
	"testing"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

func TestRouterNodeID(t *testing.T) {
	o := Options{IP: netip.MustParseAddr("127.0.97.100"), Workload: "istio-ingressgateway", Namespace: "istio-system", AgentOptions: AgentOptions{Router: true}}
	if got, want := nodeIDOf(o), "router~127.0.97.100~istio-ingressgateway.istio-system~istio-system.svc.cluster.local"; got != want {
		t.Errorf("router node id = %q, want %q", got, want)
	}
	o.Router = false
	if got := nodeIDOf(o); got != NodeID(o.IP, o.Workload, o.Namespace) {
		t.Errorf("sidecar node id = %q", got)
	}
}

func TestRouterDefaultsDropAppSettings(t *testing.T) {
	o := Options{IP: netip.MustParseAddr("127.0.97.100"), Workload: "gw",
		AgentOptions: AgentOptions{Router: true, AppProbers: `{"/app-health/x/livez":{}}`, PrometheusAnnotations: `{"scrape":"true"}`, AppMetricsURL: "http://x"}}
	o, err := o.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if o.AppProbers != "" || o.PrometheusAnnotations != "" || o.AppMetricsURL != "" {
		t.Errorf("a router kept app settings: %+v", o.AgentOptions)
	}
}

// While a router drains, none of its dynamic listeners is bound again (a sidecar holds
// back only inbound ones); the bootstrap's 15021 listener stays.
func TestRouterDrainHoldsBackEveryListener(t *testing.T) {
	gw := &resource.Listener{Name: "0.0.0.0_8080", BindToPort: true, Direction: resource.Outbound}
	snap := &resource.Snapshot{Listeners: map[string]*resource.Listener{gw.Name: gw}}
	for _, router := range []bool{false, true} {
		a := &applier{router: router, static: newStatic(netip.MustParseAddr("127.0.97.100"), 15020, 15021)}
		a.startDrain()
		got := a.merge(snap)
		if bound := got.Listeners[gw.Name].BindToPort; bound == router {
			t.Errorf("router=%v: gateway listener BindToPort=%v while draining", router, bound)
		}
		if !got.Listeners[healthListenerName].BindToPort {
			t.Errorf("router=%v: the health listener is not bound while draining", router)
		}
	}
}
