package translate

import (
	"net/netip"
	"strings"
	"testing"

	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

const sniffMesh = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: tls-a, namespace: default}
spec:
  hosts: [tls-a.example.com]
  resolution: STATIC
  ports: [{number: 8443, name: secure}]
  endpoints: [{address: 10.10.0.11}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: tls-b, namespace: default}
spec:
  hosts: [tls-b.example.com]
  resolution: STATIC
  ports: [{number: 8443, name: secure}]
  endpoints: [{address: 10.10.0.12}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web, namespace: default}
spec:
  hosts: [web.example.com]
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  endpoints: [{address: 10.10.0.13}]
`

// A port no service declares a protocol for gets Istio's auto-detection: the inspectors,
// the HTTP chain first (plaintext HTTP only), one TLS chain per service's SNI, opaque TCP
// and the default chain to the first service; a declared port keeps its one chain.
func TestSniffingListener(t *testing.T) {
	m, _ := model.Build(loadObjects(t, "mesh.yaml", []byte(sniffMesh)), nil)
	res := Generate(m, &model.Proxy{Type: model.ProxySidecar, IP: netip.MustParseAddr("10.10.0.2"), Name: "app", Namespace: "default"})
	listeners := map[string]*listenerpb.Listener{}
	for _, l := range res.Listeners {
		listeners[resourceName(l)] = l.(*listenerpb.Listener)
	}
	l := listeners["0.0.0.0_8443"]
	if l == nil {
		t.Fatalf("no 0.0.0.0_8443 listener in %v", listeners)
	}
	type chain struct {
		match, cluster string
	}
	var got []chain
	for _, fc := range append(l.GetFilterChains(), l.GetDefaultFilterChain()) {
		m := fc.GetFilterChainMatch()
		got = append(got, chain{m.GetTransportProtocol() + " " + strings.Join(m.GetServerNames(), ",") + " " + strings.Join(m.GetApplicationProtocols(), ","), fc.GetName()})
	}
	want := []chain{
		{"raw_buffer  http/1.0,http/1.1,h2c", ""},
		{"tls tls-a.example.com ", "outbound|8443||tls-a.example.com"},
		{"tls tls-b.example.com ", "outbound|8443||tls-b.example.com"},
		{"raw_buffer  ", "outbound|8443||tls-a.example.com-opaque"},
		{"  ", "outbound|8443||tls-a.example.com-tls"},
	}
	if len(got) != len(want) {
		t.Fatalf("chains %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("chain %d: %v, want %v", i, got[i], want[i])
		}
	}
	if n := len(l.GetListenerFilters()); n != 2 || l.GetListenerFilters()[0].GetName() != TLSInspectorFilter || l.GetListenerFilters()[1].GetName() != HTTPInspectorFilter {
		t.Errorf("listener filters %v, want the TLS and HTTP inspectors", l.GetListenerFilters())
	}
	if err := l.ValidateAll(); err != nil {
		t.Error(err)
	}
	if d := listeners["0.0.0.0_9080"]; len(d.GetFilterChains()) != 1 || len(d.GetListenerFilters()) != 0 || d.GetDefaultFilterChain() != nil {
		t.Errorf("declared HTTP port: %v, want one chain and no inspectors", d)
	}
}
