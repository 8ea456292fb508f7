package translate

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// Two TCP services on one port get <address>_<port> listeners (declared address, else the
// auto-allocated one) beside 0.0.0.0_<port>; a port with one TCP service gets none.
func TestSharedTCPPortListeners(t *testing.T) {
	const mesh = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db-a, namespace: default}
spec:
  hosts: [db-a.example.com]
  resolution: STATIC
  ports: [{number: 5432, name: tcp, protocol: TCP}]
  endpoints: [{address: 10.10.0.11}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db-b, namespace: default}
spec:
  hosts: [db-b.example.com]
  addresses: [10.96.0.40]
  resolution: STATIC
  ports: [{number: 5432, name: tcp, protocol: TCP}]
  endpoints: [{address: 10.10.0.12}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: cache, namespace: default}
spec:
  hosts: [cache.example.com]
  resolution: STATIC
  ports: [{number: 6379, name: tcp, protocol: TCP}]
  endpoints: [{address: 10.10.0.13}]
`
	m, _ := model.Build(loadObjects(t, "mesh.yaml", []byte(mesh)), nil)
	res := Generate(m, &model.Proxy{Type: model.ProxySidecar, IP: netip.MustParseAddr("10.10.0.2"), Name: "app", Namespace: "default"})
	var names []string
	for _, l := range res.Listeners {
		names = append(names, resourceName(l))
	}
	alloc := AutoAllocated(m)["default/db-a.example.com"]
	for _, want := range []string{"0.0.0.0_5432", alloc.String() + "_5432", "10.96.0.40_5432", "0.0.0.0_6379"} {
		if !slices.Contains(names, want) {
			t.Errorf("no listener %s in %v", want, names)
		}
	}
	if n := len(names); n != 6 { // and virtualOutbound, virtualInbound
		t.Errorf("listeners %v, want 6", names)
	}
}
